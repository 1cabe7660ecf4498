//! recpipe train stage.
