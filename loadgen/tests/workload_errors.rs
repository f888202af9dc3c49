//! Workload files: errors carry line and column, unknown fields are refused, impossible sweep
//! points (W > N) are refused by name before anything starts, and every shipped file is valid.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::path::Path;

use loadgen::workload::{Workload, WorkloadError};

fn parse(text: &str) -> Result<Workload, WorkloadError> {
    Workload::parse(text, Path::new("test.yaml"))
}

const VALID: &str = "name: ok
cluster: { nodes: 3, replication: 3 }
keys: { count: 100 }
values: { size: 1KB }
rate: 100
duration: 1s
";

#[test]
fn a_valid_file_parses_with_defaults() {
    let w = parse(VALID).unwrap();
    assert_eq!(w.keys.size.0, 16);
    let points = loadgen::sweep::points(&w).unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!((points[0].write_quorum, points[0].read_quorum), (2, 2));
}

#[test]
fn malformed_yaml_reports_line_and_column() {
    let err = parse("name: bad\nkeys: [\n").unwrap_err();
    assert!(matches!(err, WorkloadError::Parse { .. }), "{err}");
    assert_eq!(err.line_column().map(|(l, _)| l), Some(2), "{err}");
    assert!(err.to_string().starts_with("test.yaml:2:"), "{err}");
}

#[test]
fn unknown_fields_are_refused_with_their_position() {
    let text = format!("{VALID}keyz: 3\n");
    let err = parse(&text).unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.line_column(), Some((7, 1)), "{msg}");
    assert!(msg.contains("unknown field `keyz`"), "{msg}");

    // Nested sections refuse unknown fields too.
    let nested = VALID.replace(
        "keys: { count: 100 }",
        "keys: { count: 100, distrib: zipfian }",
    );
    let err = parse(&nested).unwrap_err();
    assert!(err.to_string().contains("unknown field `distrib`"), "{err}");
    assert_eq!(err.line_column().map(|(l, _)| l), Some(3));

    let sizes = VALID.replace("size: 1KB", "size: { min: 100, mux: 1KB }");
    assert!(
        parse(&sizes)
            .unwrap_err()
            .to_string()
            .contains("unknown field `mux`")
    );
}

#[test]
fn wrong_types_report_line_and_column() {
    let err = parse(&VALID.replace("count: 100", "count: ten")).unwrap_err();
    assert_eq!(err.line_column().map(|(l, _)| l), Some(3), "{err}");
    let err = parse(&VALID.replace("size: 1KB", "size: 1 banana")).unwrap_err();
    assert!(err.to_string().contains("is not a size"), "{err}");
}

#[test]
fn write_quorum_above_replication_is_refused_naming_the_point() {
    let text = format!("{VALID}sweep:\n  quorum:\n    - [2, 2]\n    - [4, 1]\n");
    let err = parse(&text).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, WorkloadError::Invalid { .. }));
    assert!(msg.contains("sweep point 1"), "{msg}");
    assert!(msg.contains("W=4"), "{msg}");
    assert!(msg.contains("N=3"), "{msg}");
    assert_eq!(err.line_column().map(|(l, _)| l), Some(10), "{msg}");

    let fixed = VALID.replace("replication: 3 }", "replication: 3, write_quorum: 4 }");
    let err = parse(&fixed).unwrap_err();
    assert!(err.to_string().contains("write quorum W=4"), "{err}");
    assert_eq!(err.line_column().map(|(l, _)| l), Some(2));

    let reads = format!("{VALID}sweep:\n  quorum: [{{w: 1, r: 5}}]\n");
    assert!(
        parse(&reads)
            .unwrap_err()
            .to_string()
            .contains("read quorum R=5")
    );
}

#[test]
fn replication_above_the_node_count_is_refused() {
    let text = format!("{VALID}sweep:\n  replication: [1, 3, 5]\n");
    let err = parse(&text).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("sweep point 2") && msg.contains("N=5"),
        "{msg}"
    );
    assert!(
        msg.contains("3 nodes") || msg.contains("the cluster has 3"),
        "{msg}"
    );
}

#[test]
fn impossible_settings_say_what_to_do() {
    let cases = [
        (VALID.replace("size: 1KB", "size: 20KB"), "10KB"),
        (VALID.replace("duration: 1s\n", ""), "add `duration"),
        (format!("{VALID}concurrency: 4\n"), "not both"),
        (VALID.replace("rate: 100\n", ""), "rate: 1000"),
        (
            VALID.replace("keys: { count: 100 }", "keys: { count: 100, theta: 0.9 }"),
            "zipfian",
        ),
        (VALID.replace("name: ok", "name: a/b"), "results folder"),
        (
            VALID.replace("keys: { count: 100 }", "keys: { count: 100000, size: 4 }"),
            "too short",
        ),
        (format!("{VALID}pipeline: 16\n"), "applies to a closed loop"),
        (
            format!(
                "{}concurrency: 4\npipeline: 0\n",
                VALID.replace("rate: 100\n", "")
            ),
            "`pipeline` must be 1..=1024",
        ),
    ];
    for (text, expected) in cases {
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(expected), "expected `{expected}` in: {err}");
    }
}

#[test]
fn cli_overrides_switch_the_loop_and_revalidate() {
    let w = parse(VALID).unwrap();
    let w = w
        .with_overrides(None, Some(8), None, Path::new("test.yaml"))
        .unwrap();
    assert!(!w.is_open_loop());
    let err = parse(VALID)
        .unwrap()
        .with_overrides(Some(10.0), Some(8), None, Path::new("test.yaml"))
        .unwrap_err();
    assert!(err.to_string().contains("not both"));
}

#[test]
fn every_shipped_workload_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let w = Workload::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!loadgen::sweep::points(&w).unwrap().is_empty());
            seen += 1;
        }
    }
    assert!(seen >= 12, "found {seen} workload files");
}

#[test]
fn cluster_events_are_checked_before_anything_starts() {
    let ok = format!(
        "{VALID}events:\n  - {{ at: 0.2s, action: kill, node: n3 }}\n  - {{ at: 0.4s, action: add }}\n  - {{ at: 0.6s, action: remove, node: n4 }}\n"
    );
    let w = parse(&ok).unwrap();
    let order: Vec<_> = w
        .events_in_order()
        .iter()
        .map(|e| e.action.name())
        .collect();
    assert_eq!(order, ["kill", "add", "remove"]);

    // (text, expected message, line of the problem)
    let cases = [
        (
            format!("{VALID}events:\n  - {{ at: 0.5s, action: kill, node: n4 }}\n"),
            "no node `n4`",
            8,
        ),
        (
            // n4 is named before the `add` that creates it.
            format!(
                "{VALID}events:\n  - {{ at: 0.8s, action: add }}\n  - {{ at: 0.1s, action: stop, node: n4 }}\n"
            ),
            "no node `n4`",
            9,
        ),
        (
            format!("{VALID}events:\n  - {{ at: 2s, action: kill, node: n1 }}\n"),
            "after the measured window",
            8,
        ),
        (
            format!("{VALID}events:\n  - {{ at: 0.5s, action: restart }}\n"),
            "needs `node: ID`",
            8,
        ),
        (
            format!("{VALID}events:\n  - {{ at: 0.5s, action: add, node: n9 }}\n"),
            "remove `node`",
            8,
        ),
    ];
    for (text, expected, line) in cases {
        let err = parse(&text).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "expected `{expected}` in: {err}"
        );
        assert_eq!(err.line_column().map(|(l, _)| l), Some(line), "{err}");
    }
    let unknown = parse(&format!(
        "{VALID}events:\n  - {{ at: 1s, action: explode, node: n1 }}\n"
    ))
    .unwrap_err();
    assert_eq!(unknown.line_column().map(|(l, _)| l), Some(8), "{unknown}");
    let endpoints = VALID.replace(
        "cluster: { nodes: 3, replication: 3 }",
        "cluster: { endpoints: [\"127.0.0.1:1\"] }",
    );
    let err = parse(&format!(
        "{endpoints}events:\n  - {{ at: 0.5s, action: kill, node: n1 }}\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("local cluster"), "{err}");
}

#[test]
fn a_value_smaller_than_the_trace_header_is_refused_with_its_position() {
    let small = VALID.replace("size: 1KB", "size: 10");
    let err = parse(&small).unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.line_column().map(|(l, _)| l), Some(4), "{msg}");
    assert!(msg.contains("24-byte header"), "{msg}");
    // A swept size is checked where it is written.
    let swept = format!("{VALID}sweep:\n  value_size: [100, 8]\n");
    let err = parse(&swept).unwrap_err();
    assert_eq!(err.line_column().map(|(l, _)| l), Some(8), "{err}");
    // Without the check, or against the null target, small values are fine.
    parse(&format!("{small}consistency: false\n")).unwrap();
    parse(&format!("{small}target: null\n")).unwrap();
}

#[test]
fn routing_is_token_aware_or_random() {
    let w = parse(&format!("{VALID}client: {{ routing: random }}\n")).unwrap();
    assert_eq!(w.client.routing, loadgen::workload::RoutingKind::Random);
    let err = parse(&format!("{VALID}client: {{ routing: nearest }}\n")).unwrap_err();
    assert!(err.to_string().contains("nearest"), "{err}");
}

#[test]
fn the_audit_is_on_for_fault_workloads_and_needs_traced_values() {
    let plain = parse(VALID).unwrap();
    assert!(!plain.audits());
    let faults = parse(&format!(
        "{VALID}events:\n  - {{ at: 0.5s, action: kill, node: n2 }}\n"
    ))
    .unwrap();
    assert!(faults.audits());
    let off = parse(&format!(
        "{VALID}audit: false\nevents:\n  - {{ at: 0.5s, action: kill, node: n2 }}\n"
    ))
    .unwrap();
    assert!(!off.audits());
    let err = parse(&format!("{VALID}consistency: false\naudit: true\n")).unwrap_err();
    assert!(err.to_string().contains("traced values"), "{err}");
    assert_eq!(err.line_column().map(|(l, _)| l), Some(8), "{err}");
}

#[test]
fn partition_events_name_groups_of_existing_nodes() {
    let with = |events: &str| parse(&format!("{VALID}events:\n{events}"));
    let w = with("  - { at: 0.2s, action: partition, groups: [[n1], [n2, n3]] }\n  - { at: 0.5s, action: heal }\n").unwrap();
    assert!(w.has_partitions());
    let err = with("  - { at: 0.2s, action: partition }\n").unwrap_err();
    assert!(err.to_string().contains("needs `groups`"), "{err}");
    let err = with("  - { at: 0.2s, action: partition, groups: [[n1], [n1, n2]] }\n").unwrap_err();
    assert!(err.to_string().contains("two groups"), "{err}");
    let err = with("  - { at: 0.2s, action: partition, groups: [[n9]] }\n").unwrap_err();
    assert!(err.to_string().contains("no node `n9`"), "{err}");
    assert_eq!(err.line_column().map(|(l, _)| l), Some(8), "{err}");
    let err = with("  - { at: 0.2s, action: kill, node: n1, groups: [[n2]] }\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("`groups` applies to `partition` only"),
        "{err}"
    );
}

#[test]
fn the_redis_target_takes_one_server_and_no_ringkv_shape() {
    let redis = |cluster: &str, extra: &str| {
        parse(&format!(
            "name: r\ntarget: redis\ncluster: {cluster}\nkeys: {{ count: 100 }}\nvalues: {{ size: 100 }}\nrate: 100\nduration: 1s\n{extra}"
        ))
    };
    redis("{ start: true }", "").unwrap();
    redis("{ endpoints: [\"127.0.0.1:6379\"] }", "").unwrap();
    let err = redis("{}", "").unwrap_err();
    assert!(err.to_string().contains("needs a server"), "{err}");
    let err = redis("{ start: true, endpoints: [\"127.0.0.1:6379\"] }", "").unwrap_err();
    assert!(err.to_string().contains("not both"), "{err}");
    let err = redis("{ start: true, replication: 3 }", "").unwrap_err();
    assert!(err.to_string().contains("shape a ringkv cluster"), "{err}");
    let err = redis("{ start: true }", "sweep:\n  quorum: [[1, 1]]\n").unwrap_err();
    assert!(err.to_string().contains("redis has none"), "{err}");
    assert_eq!(err.line_column().map(|(l, _)| l), Some(9), "{err}");
    // `start` is redis's alone.
    let err = parse(&VALID.replace(
        "cluster: { nodes: 3, replication: 3 }",
        "cluster: { start: true }",
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("`cluster.start` is for `target: redis`"),
        "{err}"
    );
}

/// `VALID` with `rate: 100` replaced by a schedule whose entries are on lines 6, 7, ….
fn with_schedule(entries: &[&str]) -> String {
    let list: String = entries.iter().map(|e| format!("  - {e}\n")).collect();
    VALID.replace("rate: 100\n", &format!("rate:\n{list}"))
}

#[test]
fn a_rate_schedule_parses_into_steps_and_ramps() {
    let w = parse(&with_schedule(&[
        "{at: 0s, rate: 500}",
        "{at: 60s, rate: 6000, ramp: true}",
        "{at: 180s, rate: 300}",
    ]))
    .unwrap();
    assert!(w.is_open_loop());
    let points = loadgen::sweep::points(&w).unwrap();
    assert_eq!(points.len(), 1);
    assert!(
        points[0].label().ends_with("rate=300..6000"),
        "{}",
        points[0].label()
    );
    let schedule = points[0].load.schedule().unwrap();
    assert_eq!(schedule.steps().len(), 3);
    assert!(schedule.steps()[1].ramp && !schedule.steps()[2].ramp);
    assert_eq!(schedule.rate_at(30.0), 3250.0);
    assert_eq!(schedule.constant_rate(), None);

    // The command line's --rate replaces a schedule.
    let w = w
        .with_overrides(Some(50.0), None, None, Path::new("test.yaml"))
        .unwrap();
    let points = loadgen::sweep::points(&w).unwrap();
    assert_eq!(
        points[0].load.schedule().unwrap().constant_rate(),
        Some(50.0)
    );
}

#[test]
fn bad_rate_schedules_name_the_entry_and_the_problem() {
    // (text, expected message, line of the problem)
    let cases = [
        (
            with_schedule(&[
                "{at: 0s, rate: 500}",
                "{at: 10s, rate: 600}",
                "{at: 5s, rate: 7}",
            ]),
            "time order",
            8,
        ),
        (
            with_schedule(&["{at: 0s, rate: 500}", "{at: 0s, rate: 600}"]),
            "later than the entry before it",
            7,
        ),
        (
            with_schedule(&["{at: 1s, rate: 500}"]),
            "must be `at: 0s`",
            6,
        ),
        (
            with_schedule(&["{at: 0s, rate: 500, ramp: true}"]),
            "cannot ramp",
            6,
        ),
        (
            with_schedule(&["{at: 0s, rate: 500}", "{at: 2s, rate: 0, ramp: true}"]),
            "between 0 and 1e9",
            7,
        ),
        (
            with_schedule(&["{at: 0s, rate: 500}", "{at: 2s, rate: -3}"]),
            "between 0 and 1e9",
            7,
        ),
        (
            with_schedule(&["{at: 0s, rate: .inf}"]),
            "between 0 and 1e9",
            6,
        ),
        (
            with_schedule(&["{at: 0s, rate: .nan}"]),
            "between 0 and 1e9",
            6,
        ),
        (
            with_schedule(&["{at: 0s, rate: 2e9}"]),
            "between 0 and 1e9",
            6,
        ),
        (
            VALID.replace("rate: 100", "rate: []"),
            "schedule is empty",
            5,
        ),
        (
            format!(
                "{}sweep:\n  rate: [100, 200]\n",
                with_schedule(&["{at: 0s, rate: 500}", "{at: 1s, rate: 600}"])
            ),
            "`sweep.rate` cannot be combined",
            10,
        ),
        (
            format!(
                "{}concurrency: 4\n",
                with_schedule(&["{at: 0s, rate: 500}", "{at: 1s, rate: 600}"])
            ),
            "choose one",
            6,
        ),
        (
            with_schedule(&["{at: 0s, rate: 500, ramps: true}"]),
            "unknown field `ramps`",
            6,
        ),
        (
            with_schedule(&["{at: soon, rate: 500}"]),
            "is not a duration",
            6,
        ),
        (VALID.replace("rate: 100", "rate: fast"), "invalid", 5),
    ];
    for (text, expected, line) in cases {
        let err = parse(&text).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "expected `{expected}` in: {err}\n{text}"
        );
        assert_eq!(
            err.line_column().map(|(l, _)| l),
            Some(line),
            "{err}\n{text}"
        );
    }
}

#[test]
fn autoscale_is_refused_where_it_cannot_act_and_its_policy_is_checked() {
    let with = |extra: &str| parse(&format!("{VALID}{extra}"));
    with("autoscale: {}\n").unwrap();
    with("autoscale: { max_nodes: 5, ops_per_node: { out_above: 100, in_below: 50 } }\n").unwrap();
    for (extra, wanted) in [
        (
            "autoscale: { ops_per_node: { out_above: 100, in_below: 90 } }\n",
            "flaps",
        ),
        ("autoscale: { min_nodes: 4 }\n", "starts with 3 nodes"),
        (
            "autoscale: { max_nodes: 2, min_nodes: 1 }\n",
            "starts with 3 nodes",
        ),
        ("autoscale: { sustain_out_s: -1 }\n", "sustain_out_s"),
        (
            "autoscale: { ops_per_node: null, cpu_per_node: null, queue_per_node: null }\n",
            "at least one",
        ),
        ("autoscale: { sustain: 5 }\n", "unknown field `sustain`"),
        (
            "autoscale: {}\nevents: [{ at: 0s, action: kill, node: n1 }]\n",
            "one or the other",
        ),
    ] {
        let err = with(extra).unwrap_err().to_string();
        assert!(err.contains(wanted), "{extra}: {err}");
    }
    let remote = VALID.replace(
        "cluster: { nodes: 3, replication: 3 }",
        "cluster: { endpoints: [\"127.0.0.1:1\"] }",
    );
    let err = parse(&format!("{remote}autoscale: {{}}\n")).unwrap_err();
    assert!(err.to_string().contains("ringkv autoscale"), "{err}");
}

#[test]
fn swept_key_counts_label_the_points_they_replace() {
    let w = parse(&format!("{VALID}sweep:\n  keys: [1000, 5000]\n")).unwrap();
    let points = loadgen::sweep::points(&w).unwrap();
    let keys: Vec<u64> = points.iter().map(|p| p.keys).collect();
    assert_eq!(keys, [1000, 5000]);
    assert!(
        points[1].label().contains("keys=5000"),
        "{}",
        points[1].label()
    );
    // Without the sweep the workload's count is used and the label is unchanged.
    let plain = loadgen::sweep::points(&parse(VALID).unwrap()).unwrap();
    assert_eq!(plain[0].keys, 100);
    assert!(!plain[0].label().contains("keys="), "{}", plain[0].label());
}

#[test]
fn bad_swept_key_counts_are_refused_where_they_are_written() {
    // (text, expected message, line of the problem)
    let cases = [
        (
            format!("{VALID}sweep:\n  keys: [100, 0]\n"),
            "`sweep.keys` must be at least 1",
            8,
        ),
        (
            // Keys are `k` and 4 digits here; 100,000 keys need 6 bytes.
            format!(
                "{}sweep:\n  keys:\n    - 1000\n    - 100000\n",
                VALID.replace("keys: { count: 100 }", "keys: { count: 100, size: 5 }")
            ),
            "`keys.size` 5 is too short for 100000 keys (`sweep.keys`)",
            10,
        ),
        (format!("{VALID}sweep:\n  keys: [1000, -5]\n"), "", 8),
        (format!("{VALID}sweep:\n  keys: [ten]\n"), "", 8),
        (
            // A running cluster keeps what earlier points wrote, so its counts must not drop.
            format!(
                "{}sweep:\n  keys: [5000, 1000]\n",
                VALID.replace(
                    "cluster: { nodes: 3, replication: 3 }",
                    "cluster: { endpoints: [\"127.0.0.1:1\"] }",
                )
            ),
            "must not decrease",
            8,
        ),
    ];
    for (text, expected, line) in cases {
        let err = parse(&text).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "expected `{expected}` in: {err}"
        );
        assert_eq!(err.line_column().map(|(l, _)| l), Some(line), "{err}");
    }
}
