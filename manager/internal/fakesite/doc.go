// Package fakesite is a site of fakes behind the manager's seams — the
// agreed state (Ledger), the databases (Databases) and the replicators
// (Replicators) — each host's as a test sets it, for the unit tests of
// the manager and of its actions. Every action is logged in order, so a
// test can check what happened and what did not. Only tests import it.
package fakesite
