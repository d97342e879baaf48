// Package pipeline builds the DAG of stage instances from an expanded
// pipeline, computes cache keys, schedules instances on an executor and
// records runs. It knows nothing of tensors: stages do the work.
package pipeline
