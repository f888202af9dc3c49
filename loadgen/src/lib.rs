//! loadgen: runs YAML workload files against a local ringkv cluster.
