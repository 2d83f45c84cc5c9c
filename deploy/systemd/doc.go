// Package systemd holds orcheo's systemd units (orcheo-api.service,
// orcheo-worker@.service, orcheo-beat.service, orcheo-migrate.service,
// orcheo.target) and orcheo.env.example. It has no Go code: its test runs
// systemd-analyze verify on the units and checks the invariants the worker's
// drain and the hardening depend on.
package systemd
