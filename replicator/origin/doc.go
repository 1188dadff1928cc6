// Package origin is how a replicator marks what it applies, so that the
// extractor of the same database never extracts it again (loop
// prevention): row changes carry the write to the tracking schema
// tungsten_<service>; statements (DDL) carry a leading comment naming the
// service and run with a pseudo thread id of our own, because MariaDB
// rewrites some DDL (DROP TABLE, CREATE VIEW) before logging it and the
// comment is lost. It is a leaf: it imports only the standard library.
package origin
