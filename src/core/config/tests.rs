use super::*;

const GOOD: &str = r#"
[train]
command = ["python3", "train.py"]

[metric]
name = "accuracy"
target = 0.95

[budget]
iteration_timeout = "10m"
metric_timeout = 90

[resources]
memory = "1g"
cpus = 1.5

[tweak]
apply = "ask"

[tweak.space]
filters = { start = 8, max = 32, factor = 2 }
lr = { start = 0.1, max = 0.5, step = 0.1 }
k = { values = [25, 9, 3] }
"#;

#[test]
fn parses_good_file() {
    let c = Config::parse(GOOD, Path::new("mlops.toml")).unwrap();
    assert_eq!(c.metric.direction, Direction::Maximize);
    assert_eq!(c.budget.iteration_timeout.0, Duration::from_secs(600));
    assert_eq!(c.budget.metric_timeout.0, Duration::from_secs(90));
    assert_eq!(c.resources.memory.0, 1 << 30);
    assert_eq!(c.tweak.apply, ApplyMode::Ask);
    let p = c.starting_params();
    assert_eq!(p["filters"], serde_json::json!(8));
    assert_eq!(p["lr"], serde_json::json!(0.1));
    assert_eq!(p["k"], serde_json::json!(25));
}

fn err(text: &str) -> String {
    Config::parse(text, Path::new("proj/mlops.toml"))
        .unwrap_err()
        .to_string()
}

#[test]
fn unknown_key_names_line_and_column() {
    let bad = GOOD.replace("cpus = 1.5", "cpu = 1.5");
    let e = err(&bad);
    assert!(
        e.starts_with("proj/mlops.toml:15:1: unknown field `cpu`"),
        "{e}"
    );
    assert!(e.contains("| cpu = 1.5"), "{e}");
}

#[test]
fn bad_duration_quotes_value() {
    let bad = GOOD.replace("\"10m\"", "\"ten minutes\"");
    let e = err(&bad);
    assert!(e.starts_with("proj/mlops.toml:10:21:"), "{e}");
    assert!(e.contains("\"ten minutes\""), "{e}");
}

#[test]
fn bad_dimension_is_located() {
    let bad = GOOD.replace("max = 32, factor = 2", "max = 4, factor = 2");
    let e = err(&bad);
    assert!(e.starts_with("proj/mlops.toml:21:11:"), "{e}");
    assert!(e.contains("`start` (8) is above `max` (4)"), "{e}");
}

#[test]
fn wrong_type_is_reported() {
    let bad = GOOD.replace("target = 0.95", "target = \"high\"");
    let e = err(&bad);
    assert!(e.starts_with("proj/mlops.toml:7:10:"), "{e}");
}

#[test]
fn invalid_regex_points_at_pattern() {
    let bad = GOOD.replace("target = 0.95", "target = 0.95\npattern = 'acc=([0-9.]+)'");
    let e = err(&bad);
    assert!(e.starts_with("proj/mlops.toml:8:1:"), "{e}");
    assert!(e.contains("(?P<value>"), "{e}");
}

#[test]
fn missing_section_is_an_error() {
    let e = err("[train]\ncommand = [\"python3\"]\n");
    assert!(e.contains("missing field `metric`"), "{e}");
}

#[test]
fn nan_never_meets_target_nor_is_best() {
    let c = Config::parse(GOOD, Path::new("x")).unwrap();
    assert!(!c.metric.meets_target(f64::NAN));
    assert!(!c.metric.meets_target(f64::INFINITY));
    assert!(c.metric.meets_target(0.95));
    assert!(!c.metric.better(f64::NAN, 0.1));
    assert!(c.metric.better(0.2, f64::NAN));
}

#[test]
fn a_huge_parameter_is_refused_where_it_is_written() {
    let blob = "x".repeat(70 * 1024);
    let text = format!("{GOOD}\n[params]\nseed = 1\nblob = \"{blob}\"\n");
    let e = err(&text);
    assert!(
        e.starts_with("proj/mlops.toml:27:1: `blob` is 70.0 KiB as JSON; a parameter value may be at most 64 KiB"),
        "{}",
        &e[..200]
    );
    let values = format!("[\"a\", \"{blob}\"]");
    let text = GOOD.replace("[25, 9, 3]", &values);
    let e = err(&text);
    assert!(
        e.starts_with("proj/mlops.toml:23:1: `k` is 70.0 KiB"),
        "{}",
        &e[..200]
    );
}

#[test]
fn parameters_too_large_together_are_refused() {
    let half = "x".repeat(60 * 1024);
    let text = format!("{GOOD}\n[params]\na = \"{half}\"\nb = \"{half}\"\n");
    let e = err(&text);
    assert!(
        e.starts_with("proj/mlops.toml:27:1: the parameters are 120.0 KiB together as JSON"),
        "{}",
        &e[..200]
    );
}

#[test]
fn resources_beyond_the_engine_are_located() {
    let c = Config::parse(GOOD, Path::new("proj/mlops.toml")).unwrap();
    let small = EngineLimits {
        cpus: 1,
        memory_bytes: 8 << 30,
        hosts: 1,
    };
    let e = c
        .check_engine_limits(GOOD, Path::new("proj/mlops.toml"), small)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "proj/mlops.toml:15:1: `resources.cpus` is 1.5, but the Docker engine has 1 CPUs: set it to at most 1"
        ),
        "{e}"
    );
    let tiny = EngineLimits {
        cpus: 4,
        memory_bytes: 512 << 20,
        hosts: 1,
    };
    let e = c
        .check_engine_limits(GOOD, Path::new("proj/mlops.toml"), tiny)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("proj/mlops.toml:14:1: `resources.memory` is 1g, but the Docker engine has 512 MiB of memory: set it to at most 512m"),
        "{e}"
    );
    let roomy = EngineLimits {
        cpus: 4,
        memory_bytes: 8 << 30,
        hosts: 1,
    };
    assert!(c.check_engine_limits(GOOD, Path::new("p"), roomy).is_ok());
}

#[test]
fn a_huge_line_is_quoted_short() {
    let blob = "x".repeat(70 * 1024);
    let text = format!("{GOOD}\n[params]\nblob = \"{blob}\"\n");
    let e = err(&text);
    let snippet = e.lines().last().unwrap();
    assert!(snippet.starts_with("  | blob = \"xxx"), "{snippet}");
    assert!(snippet.ends_with("x…"), "{snippet}");
    assert!(snippet.chars().count() < 210, "{snippet}");
}

#[test]
fn a_metric_file_is_inside_the_workspace_or_under_mlops() {
    let with = |file: &str| {
        let base = "[train]\ncommand = [\"python3\", \"train.py\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n";
        format!("{base}file = \"{file}\"\n")
    };
    for ok in ["accuracy.txt", "out/acc.txt", "/mlops/acc.txt"] {
        let c = Config::parse(&with(ok), Path::new("mlops.toml")).unwrap();
        assert_eq!(c.metric.file.as_deref(), Some(ok));
    }
    let e = err(&with("/tmp/acc.txt"));
    assert!(
        e.starts_with("proj/mlops.toml:6:1: `metric.file` \"/tmp/acc.txt\" must be relative"),
        "{e}"
    );
    let e = err(&with("../acc.txt"));
    assert!(e.contains("must not contain `..`"), "{e}");
}

fn with_space(space: &str) -> String {
    format!(
        "[train]\ncommand = [\"python3\", \"train.py\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n[tweak]\nseed = 7\n[tweak.space]\n{space}\n"
    )
}

#[test]
fn number_and_choice_dimensions_parse() {
    let text = with_space(
        "lr = { min = 1e-4, max = 1e-1, log = true }\nunits = { min = 8, max = 256, step = 8 }\nopt = { choices = [\"adam\", \"sgd\"] }\ndropout = { min = 0.0, max = 0.5, start = 0.2 }\nwidth = { min = 16, max = 1024, log = true }",
    );
    let c = Config::parse(&text, Path::new("mlops.toml")).unwrap();
    assert_eq!(c.tweak.seed, 7);
    assert_eq!(c.tweak.strategy, StrategyName::Gp);
    let d = &c.tweak.space;
    assert_eq!(
        d["lr"],
        Dimension::Number {
            min: 1e-4,
            max: 1e-1,
            log: true,
            step: None,
            integer: false,
            start: None
        }
    );
    assert_eq!(d["lr"].grid(), None);
    let units = d["units"].grid().unwrap();
    assert_eq!(units.len(), 32);
    assert_eq!(units[1], serde_json::json!(16));
    assert!(d["units"].contains(&serde_json::json!(24)));
    assert!(!d["units"].contains(&serde_json::json!(20)));
    assert!(!d["units"].contains(&serde_json::json!(264)));
    assert!(d["opt"].contains(&serde_json::json!("sgd")));
    assert_eq!(d["width"].grid().map(|g| g.len()), Some(1009));
    let p = c.starting_params();
    // Log scale: the geometric mean, to three significant digits; linear: min; an explicit start
    // wins, as written.
    assert_eq!(p["lr"], serde_json::json!(0.00316));
    assert_eq!(p["width"], serde_json::json!(128));
    assert_eq!(p["units"], serde_json::json!(8));
    assert_eq!(p["opt"], serde_json::json!("adam"));
    assert_eq!(p["dropout"], serde_json::json!(0.2));
    for s in ["grow", "random", "gp"] {
        let text = with_space("k = { values = [1, 2] }")
            .replace("seed = 7", &format!("strategy = \"{s}\""));
        assert!(Config::parse(&text, Path::new("m")).is_ok(), "{s}");
    }
}

#[test]
fn bad_number_and_choice_dimensions_are_located() {
    let cases = [
        (
            "lr = { min = 0.0, max = 1.0, log = true }",
            "a log scale needs `min` above 0",
        ),
        (
            "lr = { min = 1.0, max = 1.0 }",
            "`min` (1) must be below `max` (1)",
        ),
        (
            "lr = { max = 1.0, log = true }",
            "`log` needs `min` and `max`",
        ),
        (
            "u = { min = 8, max = 64, step = 8, log = true }",
            "not both",
        ),
        (
            "u = { min = 8, max = 64, step = 0 }",
            "`step` must be above 0",
        ),
        (
            "u = { min = 8, max = 64, step = 8, start = 12 }",
            "`start` (12) is not a value",
        ),
        (
            "u = { min = 8, max = 64, factor = 2 }",
            "with `min` and `max` write `log = true`",
        ),
        ("u = { min = 8 }", "a `min` needs a `max`"),
        ("o = { choices = [] }", "`choices` must not be empty"),
        (
            "o = { choices = [\"a\", \"a\"] }",
            "`choices` lists \"a\" twice",
        ),
        (
            "o = { choices = [\"a\"], start = \"a\" }",
            "`choices = [...]` stands alone",
        ),
        ("o = { choices = [1], values = [1] }", "not both"),
    ];
    for (space, want) in cases {
        let e = err(&with_space(space));
        assert!(e.starts_with("proj/mlops.toml:9:"), "{space}: {e}");
        assert!(e.contains(want), "{space}: {e}");
    }
    let e =
        err(&with_space("k = { values = [1] }").replace("seed = 7", "strategy = \"annealing\""));
    assert!(e.starts_with("proj/mlops.toml:7:12:"), "{e}");
}

#[test]
fn a_source_bound_number_starts_from_the_code() {
    let text = with_space(
        "gamma = { source = \"svm.py\", call = \"SVC\", arg = \"gamma\", min = 1e-4, max = 1.0, log = true }\nC = { source = \"svm.py\", call = \"SVC\", arg = \"C\", min = 0.1, max = 10.0, start = 1.0 }",
    );
    let c = Config::parse(&text, Path::new("mlops.toml")).unwrap();
    let code: Params = [
        ("gamma".to_string(), serde_json::json!(0.001)),
        ("C".to_string(), serde_json::json!(5.0)),
    ]
    .into();
    let p = c.starting_params_with(&code);
    assert_eq!(p["gamma"], serde_json::json!(0.001), "the code's value");
    assert_eq!(p["C"], serde_json::json!(1.0), "an explicit start wins");
    let outside: Params = [("gamma".to_string(), serde_json::json!(5.0))].into();
    assert_eq!(
        c.starting_params_with(&outside)["gamma"],
        c.starting_params()["gamma"],
        "a code value outside the space is not a start"
    );
}

#[test]
fn continuous_proposals_read_as_people_write_them() {
    use super::Dimension;
    let log = Dimension::Number {
        min: 1e-5,
        max: 0.1,
        log: true,
        step: None,
        integer: false,
        start: Some(0.0012345),
    };
    assert_eq!(log.snap(0.005216636201), serde_json::json!(0.00522));
    assert_eq!(log.snap(0.0999999), serde_json::json!(0.1));
    assert_eq!(
        log.start(),
        serde_json::json!(0.0012345),
        "an explicit start is kept"
    );
    let linear = Dimension::Number {
        min: 0.0,
        max: 0.5,
        log: false,
        step: None,
        integer: false,
        start: None,
    };
    assert_eq!(linear.snap(0.23731234), serde_json::json!(0.2373));
    let narrow = Dimension::Number {
        min: 1000.0,
        max: 1001.0,
        log: false,
        step: None,
        integer: false,
        start: None,
    };
    assert_eq!(narrow.snap(1000.123456), serde_json::json!(1000.123));
}

#[test]
fn parallel_is_one_by_default_and_zero_is_located() {
    let c = Config::parse(GOOD, Path::new("mlops.toml")).unwrap();
    assert_eq!(c.budget.parallel, 1);
    let three = GOOD.replace("metric_timeout = 90", "metric_timeout = 90\nparallel = 3");
    let c = Config::parse(&three, Path::new("mlops.toml")).unwrap();
    assert_eq!(c.budget.parallel, 3);
    let zero = GOOD.replace("metric_timeout = 90", "metric_timeout = 90\nparallel = 0");
    let e = Config::parse(&zero, Path::new("proj/mlops.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("proj/mlops.toml:12:1: `budget.parallel` must be at least 1"),
        "{e}"
    );
}

#[test]
fn a_parallel_past_the_hard_cap_is_located() {
    let huge = GOOD.replace(
        "metric_timeout = 90",
        "metric_timeout = 90\nparallel = 1000000",
    );
    let e = Config::parse(&huge, Path::new("proj/mlops.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "proj/mlops.toml:12:1: `budget.parallel` is 1000000; at most 256 trials can run at once"
        ),
        "{e}"
    );
    let most = GOOD.replace("metric_timeout = 90", "metric_timeout = 90\nparallel = 256");
    assert!(Config::parse(&most, Path::new("p")).is_ok());
}

/// A space of `n` dimensions, each `value` long as JSON.
fn wide_space(n: usize, value: &str) -> String {
    let mut text = String::from(
        "[train]\ncommand = [\"python3\", \"train.py\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n[tweak.space]\n",
    );
    for i in 0..n {
        text.push_str(&format!("p{i:05} = {{ values = [\"{value}\"] }}\n"));
    }
    text
}

/// 10,000 dimensions are refused by their count, at the `[tweak.space]` header, before any check
/// that walks the space: the parameter-size check would also fail on this file, and it is not the
/// one reported.
#[test]
fn a_space_of_ten_thousand_dimensions_is_refused_by_its_count_first() {
    let text = wide_space(10_000, "xxxxxxxxxx");
    let e = Config::parse(&text, Path::new("proj/mlops.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "proj/mlops.toml:6:8: [tweak.space] has 10000 dimensions; at most 100 can be searched"
        ),
        "{e}"
    );
    let at_most = wide_space(100, "x");
    let c = Config::parse(&at_most, Path::new("p")).unwrap();
    assert_eq!(c.tweak.space.len(), MAX_DIMENSIONS);
}

/// An error about every dimension at once (the parameters together are too large) points at the one
/// written last, the file parsed once for all of them.
#[test]
fn an_error_naming_every_dimension_points_at_the_last() {
    let text = wide_space(100, &"x".repeat(1_000));
    let e = Config::parse(&text, Path::new("proj/mlops.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("proj/mlops.toml:106:1: the parameters are "),
        "{e}"
    );
}
