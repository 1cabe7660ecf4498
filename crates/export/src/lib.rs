//! recpipe export stage.
