//! recpipe ingest stage.
