use super::*;
use crate::core::config::Direction;
use crate::core::ids::IterationNo;
use serde_json::{Value, json};

fn metric() -> Metric {
    Metric {
        name: "accuracy".into(),
        direction: Direction::Maximize,
        target: 0.95,
        pattern: None,
        range: None,
        file: None,
    }
}

fn step(start: f64, max: f64, step: f64, integer: bool) -> Dimension {
    Dimension::Range {
        start,
        max,
        step: Some(step),
        factor: None,
        integer,
    }
}

fn factor(start: f64, max: f64, factor: f64, integer: bool) -> Dimension {
    Dimension::Range {
        start,
        max,
        step: None,
        factor: Some(factor),
        integer,
    }
}

fn space(dims: &[(&str, Dimension)]) -> BTreeMap<String, Dimension> {
    dims.iter()
        .map(|(n, d)| (n.to_string(), d.clone()))
        .collect()
}

fn params(values: &[(&str, Value)]) -> Params {
    values
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect()
}

/// A point the operator rejected; [`ran`] numbers points as iterations.
fn tried(p: &Params, value: Option<f64>) -> Tried {
    Tried::new(p.clone(), value, None)
}

/// The points as iterations 1, 2, … in order.
fn ran<const N: usize>(points: [Tried; N]) -> Vec<Tried> {
    points
        .into_iter()
        .zip(1..)
        .map(|(t, n)| Tried {
            iteration: Some(IterationNo(n)),
            ..t
        })
        .collect()
}

fn propose(
    space: &BTreeMap<String, Dimension>,
    current: &Params,
    history: &[Tried],
) -> Option<Proposal> {
    propose_with(space, &metric(), current, history)
}

fn propose_with(
    space: &BTreeMap<String, Dimension>,
    metric: &Metric,
    current: &Params,
    history: &[Tried],
) -> Option<Proposal> {
    let tweak = crate::core::config::Tweak {
        strategy: StrategyName::Grow,
        ..Default::default()
    };
    let search = Search {
        space,
        metric,
        current,
        history,
        pending: &[],
        seed: 0,
    };
    strategy_for(&tweak).propose(&search, 1).into_iter().next()
}

#[test]
fn range_step_advances_every_dimension() {
    let s = space(&[
        ("conv_layers", step(1.0, 3.0, 1.0, true)),
        ("epochs", step(3.0, 10.0, 2.0, true)),
    ]);
    let cur = params(&[("conv_layers", json!(1)), ("epochs", json!(3))]);
    let p = propose(&s, &cur, &[tried(&cur, Some(0.5))]).unwrap();
    assert_eq!(
        p.params,
        params(&[("conv_layers", json!(2)), ("epochs", json!(5))])
    );
    assert_eq!(p.summary(), "conv_layers 1→2, epochs 3→5");
    // Integers stay integers in the JSON written for the training code.
    assert!(p.params["epochs"].is_i64());
}

#[test]
fn factor_clamps_to_max_then_stops() {
    let s = space(&[("filters", factor(8.0, 20.0, 2.0, true))]);
    let cur = params(&[("filters", json!(16))]);
    let p = propose(&s, &cur, &[]).unwrap();
    assert_eq!(p.params["filters"], json!(20));
    assert!(propose(&s, &p.params, &[]).is_none());
    // A small factor on a small integer still moves.
    let s = space(&[("units", factor(2.0, 10.0, 1.2, true))]);
    let p = propose(&s, &params(&[("units", json!(2))]), &[]).unwrap();
    assert_eq!(p.params["units"], json!(3));
}

#[test]
fn values_list_moves_to_next_element() {
    let s = space(&[(
        "k",
        Dimension::Values(vec![json!(25), json!(9), json!(3), json!(1)]),
    )]);
    let p = propose(&s, &params(&[("k", json!(9))]), &[]).unwrap();
    assert_eq!(p.params["k"], json!(3));
    assert_eq!(p.summary(), "k 9→3");
    assert!(propose(&s, &params(&[("k", json!(1))]), &[]).is_none());
    let s = space(&[(
        "optimizer",
        Dimension::Values(vec![json!("sgd"), json!("adam")]),
    )]);
    let p = propose(&s, &params(&[("optimizer", json!("sgd"))]), &[]).unwrap();
    assert_eq!(p.changes[0].to_string(), "optimizer sgd→adam");
}

#[test]
fn float_steps_are_rounded() {
    let s = space(&[("dropout", step(0.1, 0.5, 0.1, false))]);
    let mut cur = params(&[("dropout", json!(0.1))]);
    let mut seen = Vec::new();
    while let Some(p) = propose(&s, &cur, &[]) {
        cur = p.params;
        seen.push(cur["dropout"].as_f64().unwrap());
    }
    assert_eq!(seen, vec![0.2, 0.3, 0.4, 0.5]);
    assert_eq!(
        params(&[("dropout", json!(0.3))])["dropout"].to_string(),
        "0.3"
    );
    let s = space(&[("lr", factor(0.001, 1.0, 3.0, false))]);
    let p = propose(&s, &params(&[("lr", json!(0.1))]), &[]).unwrap();
    assert_eq!(p.params["lr"].to_string(), "0.3");
}

#[test]
fn exhausted_space_gives_none() {
    let s = space(&[
        ("conv_layers", step(1.0, 2.0, 1.0, true)),
        ("k", Dimension::Values(vec![json!(3), json!(1)])),
    ]);
    let cur = params(&[("conv_layers", json!(2)), ("k", json!(1))]);
    assert!(propose(&s, &cur, &[tried(&cur, Some(0.5))]).is_none());
    // One dimension at its end, the other still moves; the one at its end is not a change.
    let cur = params(&[("conv_layers", json!(2)), ("k", json!(3))]);
    let p = propose(&s, &cur, &[]).unwrap();
    assert_eq!(p.summary(), "k 3→1");
}

#[test]
fn already_tried_points_are_skipped() {
    let s = space(&[("epochs", step(1.0, 4.0, 1.0, true))]);
    let one = params(&[("epochs", json!(1))]);
    let two = params(&[("epochs", json!(2))]);
    // Tried as a float by some other path: still the same point.
    let three = params(&[("epochs", json!(3.0))]);
    let history = [
        tried(&one, Some(0.1)),
        tried(&two, Some(0.2)),
        tried(&three, None),
    ];
    let p = propose(&s, &one, &history).unwrap();
    assert_eq!(p.params["epochs"], json!(4));
    assert!(
        p.reason.ends_with("; skipped 2 already-tried points"),
        "{}",
        p.reason
    );
    let four = params(&[("epochs", json!(4))]);
    let mut history = history.to_vec();
    history.push(tried(&four, Some(0.3)));
    assert!(propose(&s, &one, &history).is_none());
}

#[test]
fn fixed_params_are_carried() {
    let s = space(&[("epochs", step(1.0, 4.0, 1.0, true))]);
    let cur = params(&[
        ("epochs", json!(1)),
        ("seed", json!(42)),
        ("dataset", json!("mnist")),
    ]);
    let p = propose(&s, &cur, &[]).unwrap();
    assert_eq!(p.params["seed"], json!(42));
    assert_eq!(p.params["dataset"], json!("mnist"));
    assert_eq!(p.params.len(), 3);
    assert_eq!(p.changes.len(), 1);
}

#[test]
fn missing_dimension_enters_at_start() {
    let s = space(&[("epochs", step(3.0, 9.0, 3.0, true))]);
    let p = propose(&s, &params(&[("seed", json!(1))]), &[]).unwrap();
    assert_eq!(p.params["epochs"], json!(3));
    assert_eq!(p.summary(), "epochs unset→3");
}

#[test]
fn reason_names_metric_target_and_changes() {
    let s = space(&[
        ("conv_layers", step(1.0, 3.0, 1.0, true)),
        ("epochs", step(3.0, 10.0, 2.0, true)),
        ("filters", factor(8.0, 64.0, 2.0, true)),
    ]);
    let first = params(&[
        ("conv_layers", json!(1)),
        ("epochs", json!(3)),
        ("filters", json!(8)),
    ]);
    let other = params(&[
        ("conv_layers", json!(1)),
        ("epochs", json!(1)),
        ("filters", json!(8)),
    ]);
    let history = ran([tried(&other, Some(0.5)), tried(&first, Some(0.8312345))]);
    let p = propose(&s, &first, &history).unwrap();
    assert_eq!(
        p.reason,
        "accuracy 0.8312 < target 0.95 after iteration 2: grow capacity \
         (conv_layers 1→2, epochs 3→5, filters 8→16)"
    );
    let history = ran([tried(&other, Some(0.5)), tried(&first, None)]);
    let p = propose(&s, &first, &history).unwrap();
    assert!(
        p.reason
            .starts_with("iteration 2 failed; growing from its parameters (conv_layers 1→2"),
        "{}",
        p.reason
    );
    let p = propose(&s, &first, &ran([tried(&first, Some(f64::NAN))])).unwrap();
    assert!(
        p.reason.starts_with("accuracy was NaN after iteration 1"),
        "{}",
        p.reason
    );
    let loss = Metric {
        name: "loss".into(),
        direction: Direction::Minimize,
        target: 0.1,
        pattern: None,
        range: None,
        file: None,
    };
    let p = propose_with(&s, &loss, &first, &ran([tried(&first, Some(0.4))])).unwrap();
    assert!(
        p.reason
            .starts_with("loss 0.4 > target 0.1 after iteration 1"),
        "{}",
        p.reason
    );
    assert_eq!(Grow.name(), "grow");
}

#[test]
fn reason_names_the_last_iteration_not_a_rejected_point() {
    let s = space(&[("filters", factor(8.0, 64.0, 2.0, true))]);
    let one = params(&[("filters", json!(8))]);
    let rejected = params(&[("filters", json!(16))]);
    let mut history = vec![tried(&rejected, None), tried(&rejected, None)];
    history.extend(ran([tried(&one, Some(0.5))]));
    let p = propose(&s, &one, &history).unwrap();
    assert!(
        p.reason
            .starts_with("accuracy 0.5 < target 0.95 after iteration 1:"),
        "{}",
        p.reason
    );
    assert_eq!(p.params["filters"], json!(32));
}

#[test]
fn apply_edit_parses_and_checks_bounds() {
    let s = space(&[
        ("filters", factor(8.0, 64.0, 2.0, true)),
        ("dropout", step(0.1, 0.5, 0.1, false)),
        ("k", Dimension::Values(vec![json!(25), json!(9), json!(3)])),
        ("opt", Dimension::Values(vec![json!("sgd"), json!("adam")])),
    ]);
    let p = params(&[
        ("filters", json!(8)),
        ("dropout", json!(0.1)),
        ("k", json!(25)),
        ("opt", json!("sgd")),
        ("seed", json!(1)),
        ("lr", json!(0.01)),
        ("augment", json!(true)),
        ("dataset", json!("mnist")),
    ]);
    let ok = |name: &str, raw: &str| apply_edit(&p, name, raw, &s).unwrap()[name].clone();
    assert_eq!(ok("filters", " 32 "), json!(32));
    assert_eq!(ok("filters", "32.0"), json!(32));
    assert_eq!(ok("dropout", "0.25"), json!(0.25));
    assert_eq!(ok("k", "9"), json!(9));
    assert_eq!(ok("opt", "adam"), json!("adam"));
    assert_eq!(ok("seed", "7"), json!(7));
    assert_eq!(ok("lr", "0.1"), json!(0.1));
    assert_eq!(ok("augment", "false"), json!(false));
    assert_eq!(ok("dataset", "cifar10"), json!("cifar10"));
    let edited = apply_edit(&p, "filters", "16", &s).unwrap();
    assert_eq!(edited.len(), p.len());
    assert_eq!(edited["dropout"], p["dropout"]);

    let err = |name: &str, raw: &str| apply_edit(&p, name, raw, &s).unwrap_err();
    assert!(
        err("dataset", &"x".repeat(65 * 1024)).starts_with("`dataset` is 65.0 KiB as JSON"),
        "a value past the size cap is refused"
    );
    assert_eq!(
        err("filters", "128"),
        "`filters` must be between 8 and 64, got 128"
    );
    assert_eq!(
        err("filters", "4"),
        "`filters` must be between 8 and 64, got 4"
    );
    assert_eq!(
        err("filters", "12.5"),
        "`filters` takes whole numbers, got 12.5"
    );
    assert_eq!(
        err("filters", "lots"),
        "`filters` needs a number, got \"lots\""
    );
    assert_eq!(
        err("filters", "NaN"),
        "`filters` needs a number, got \"NaN\""
    );
    assert_eq!(
        err("dropout", "0.9"),
        "`dropout` must be between 0.1 and 0.5, got 0.9"
    );
    assert_eq!(err("k", "4"), "`k` must be one of 25, 9, 3, got 4");
    assert_eq!(
        err("opt", "rmsprop"),
        "`opt` must be one of sgd, adam, got rmsprop"
    );
    assert_eq!(
        err("seed", "1.5"),
        "`seed` takes whole numbers, got \"1.5\""
    );
    assert_eq!(
        err("augment", "yes"),
        "`augment` must be true or false, got \"yes\""
    );
    assert_eq!(err("nope", "1"), "unknown parameter `nope`");
    assert_eq!(err("filters", "  "), "`filters` needs a value");
}
