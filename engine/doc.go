// Package engine compiles and executes orcheo workflow definitions.
//
// A definition is a JSON or YAML document listing nodes (each with an id,
// a type and the options of that type) and, optionally, edges between them.
// Compile validates a definition and returns its canonical JSON form, the
// form the store keeps; Execute walks a compiled definition for one run and
// reports every node as an orcheo.RunStep.
//
// Node types live behind the NodeType interface, one file each
// (node_set.go, node_log.go, node_fail.go): a type decodes and validates its
// options at compile time through a Spec and returns an Action that the
// executor runs. docs/workflows.md describes the format for users.
package engine
