//! recpipe split stage.
