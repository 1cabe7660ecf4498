//! recpipe evaluate stage.
