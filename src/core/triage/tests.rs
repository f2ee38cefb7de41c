use super::*;

/// A failure with exit code 1 and no metric reported, as most uncaught exceptions end.
fn crashed(output: &str) -> Diagnosis {
    triage(
        Ending {
            code: 1,
            oom_killed: false,
            metric_reported: false,
        },
        &output.lines().collect::<Vec<_>>(),
    )
}

fn permanent(output: &str) -> (Class, String, String) {
    let d = crashed(output);
    assert!(d.is_permanent(), "{d:?}");
    let hint = d.hint().unwrap_or_else(|| panic!("no hint for {d:?}"));
    (d.class, d.error.unwrap_or_default(), hint)
}

const MISSING_MODULE: &str = r#"Loading the digits
Traceback (most recent call last):
  File "/workspace/model_code3.py", line 9, in <module>
    import seaborn as sns
ModuleNotFoundError: No module named 'seaborn'"#;

#[test]
fn a_missing_module_names_it_and_requirements_txt() {
    let (class, error, hint) = permanent(MISSING_MODULE);
    assert_eq!(
        class,
        Class::MissingModule {
            module: Some("seaborn".into())
        }
    );
    assert_eq!(
        error,
        "ModuleNotFoundError: No module named 'seaborn' (at model_code3.py:9)"
    );
    assert!(hint.contains("`seaborn`"), "{hint}");
    assert!(hint.contains("requirements.txt"), "{hint}");
}

#[test]
fn an_import_error_of_a_submodule_names_the_package() {
    let out = r#"Traceback (most recent call last):
  File "/workspace/train.py", line 2, in <module>
    from keras.layers import Convolution2D
ImportError: No module named 'keras.layers'"#;
    let (class, _, _) = permanent(out);
    assert_eq!(
        class,
        Class::MissingModule {
            module: Some("keras".into())
        }
    );
    let version = r#"Traceback (most recent call last):
  File "/workspace/train.py", line 3, in <module>
    from sklearn.metrics import root_mean_squared_error
ImportError: cannot import name 'root_mean_squared_error' from 'sklearn.metrics' (/usr/lib/python3/dist-packages/sklearn/metrics/__init__.py)"#;
    let (class, error, hint) = permanent(version);
    assert_eq!(class, Class::MissingModule { module: None });
    assert!(error.ends_with("(at train.py:3)"), "{error}");
    assert!(hint.contains("requirements.txt"), "{hint}");
}

#[test]
fn a_script_python_cannot_open_points_at_the_command() {
    let out = "python3: can't open file '/workspace/train.py': [Errno 2] No such file or directory";
    let (class, error, hint) = permanent(out);
    assert_eq!(
        class,
        Class::MissingScript {
            file: "train.py".into()
        }
    );
    assert_eq!(error, out);
    assert!(hint.contains("`train.py`"), "{hint}");
    assert!(
        hint.contains("check [train] command in mlops.toml"),
        "{hint}"
    );
}

#[test]
fn pandas_reading_a_missing_csv_names_the_file() {
    let out = r#"Traceback (most recent call last):
  File "/workspace/knn.py", line 14, in <module>
    df = pd.read_csv('data.csv')
         ^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3/dist-packages/pandas/io/parsers/readers.py", line 948, in read_csv
    return _read(filepath_or_buffer, kwds)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3/dist-packages/pandas/io/parsers/readers.py", line 611, in _read
    parser = TextFileReader(filepath_or_buffer, **kwds)
             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3/dist-packages/pandas/io/common.py", line 873, in get_handle
    handle = open(
             ^^^^^
FileNotFoundError: [Errno 2] No such file or directory: 'data.csv'"#;
    let (class, error, hint) = permanent(out);
    assert_eq!(
        class,
        Class::MissingFile {
            path: Some("data.csv".into())
        }
    );
    assert_eq!(
        error,
        "FileNotFoundError: [Errno 2] No such file or directory: 'data.csv' (at knn.py:14)"
    );
    assert!(hint.contains("`data.csv`"), "{hint}");
    assert!(hint.contains("[data]"), "{hint}");
}

#[test]
fn numpy_reading_a_missing_file_names_it() {
    let out = r#"Traceback (most recent call last):
  File "/workspace/train.py", line 6, in <module>
    X = np.loadtxt('digits.csv', delimiter=',')
        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3/dist-packages/numpy/lib/npyio.py", line 1338, in loadtxt
    arr = _read(fname, dtype=dtype, comment=comment, delimiter=delimiter,
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3/dist-packages/numpy/lib/_datasource.py", line 533, in open
    raise FileNotFoundError(f"{path} not found.")
FileNotFoundError: digits.csv not found."#;
    let (class, error, _) = permanent(out);
    assert_eq!(
        class,
        Class::MissingFile {
            path: Some("digits.csv".into())
        }
    );
    assert_eq!(
        error,
        "FileNotFoundError: digits.csv not found. (at train.py:6)"
    );
}

#[test]
fn numpy_internals_are_not_the_users_code() {
    let out = r#"Traceback (most recent call last):
  File "/workspace/train.py", line 6, in <module>
    grid = np.linspace(0.0, 1.0, num=epochs - 2)
  File "<__array_function__ internals>", line 200, in linspace
  File "/usr/lib/python3/dist-packages/numpy/core/function_base.py", line 121, in linspace
    raise ValueError("Number of samples, %s, must be non-negative." % num)
ValueError: Number of samples, -1, must be non-negative."#;
    let d = crashed(out);
    assert_eq!(d.class, Class::Library);
    assert_eq!(
        d.error.as_deref(),
        Some("ValueError: Number of samples, -1, must be non-negative. (at train.py:6)")
    );
}

#[test]
fn a_syntax_error_in_the_script_says_where() {
    // The script itself does not parse: Python prints no traceback header.
    let out = r#"  File "/workspace/train.py", line 7
    print("accuracy=%f" % acc
         ^
SyntaxError: '(' was never closed"#;
    let (class, error, hint) = permanent(out);
    assert_eq!(class, Class::Syntax);
    assert_eq!(error, "SyntaxError: '(' was never closed (at train.py:7)");
    assert!(hint.contains("at train.py:7"), "{hint}");

    let imported = r#"Traceback (most recent call last):
  File "/workspace/train.py", line 3, in <module>
    import helpers
  File "/workspace/helpers.py", line 12
    	return x
    ^
TabError: inconsistent use of tabs and spaces in indentation"#;
    let (class, error, _) = permanent(imported);
    assert_eq!(class, Class::Syntax);
    assert!(error.ends_with("(at helpers.py:12)"), "{error}");
    let indent = "  File \"/workspace/nb.py\", line 40\n    model.fit(x, y)\nIndentationError: unexpected indent";
    assert_eq!(permanent(indent).0, Class::Syntax);
}

#[test]
fn saving_next_to_the_script_on_a_read_only_workspace() {
    let out = r#"accuracy=0.91
Traceback (most recent call last):
  File "/workspace/knn.py", line 31, in <module>
    with open('knn_model.pkl', 'wb') as f:
         ^^^^^^^^^^^^^^^^^^^^^^^^^^^
OSError: [Errno 30] Read-only file system: 'knn_model.pkl'"#;
    let (class, error, hint) = permanent(out);
    assert_eq!(class, Class::ReadOnly);
    assert!(error.starts_with("OSError: [Errno 30]"), "{error}");
    assert!(hint.contains("/mlops"), "{hint}");
}

#[test]
fn writing_into_read_only_data_is_permanent_whoever_says_it() {
    // A shell (no traceback): its own words, within the last lines.
    let out = "epoch 1 loss=0.3\nsh: 1: cannot create /data/ds/cache.txt: Read-only file system\n";
    let (class, error, hint) = permanent(out);
    assert_eq!(class, Class::ReadOnly);
    assert_eq!(
        error,
        "sh: 1: cannot create /data/ds/cache.txt: Read-only file system"
    );
    assert!(hint.contains("[data] mounts are read-only"), "{hint}");
    // SQLite, in Python: a database created in a read-only directory, or written read-only.
    for message in [
        "sqlite3.OperationalError: unable to open database file",
        "sqlite3.OperationalError: attempt to write a readonly database",
    ] {
        let out = format!(
            "Traceback (most recent call last):\n  File \"/workspace/train.py\", line 3, in <module>\n    db = sqlite3.connect('/data/ds/c.db')\n{message}"
        );
        let (class, error, _) = permanent(&out);
        assert_eq!(class, Class::ReadOnly, "{message}");
        assert!(error.starts_with(message), "{error}");
    }
    // Other SQLite errors may depend on the parameters (a query built from them).
    let out = "Traceback (most recent call last):\n  File \"/workspace/train.py\", line 3, in <module>\n    db.execute(q)\nsqlite3.OperationalError: no such column: k3";
    assert!(!crashed(out).is_permanent());
    // A clean exit that printed it is no failure at all.
    let d = triage(
        Ending {
            code: 0,
            oom_killed: false,
            metric_reported: true,
        },
        &["sh: 1: cannot create /data/x: Read-only file system"],
    );
    assert_eq!(d.class, Class::Unknown);
}

#[test]
fn permission_denied() {
    let out = r#"Traceback (most recent call last):
  File "/workspace/train.py", line 5, in <module>
    os.makedirs("/data/cache")
  File "<frozen os>", line 225, in makedirs
PermissionError: [Errno 13] Permission denied: '/data'"#;
    let (class, error, hint) = permanent(out);
    assert_eq!(class, Class::PermissionDenied);
    assert!(error.ends_with("(at train.py:5)"), "{error}");
    assert!(hint.contains("unprivileged"), "{hint}");
}

/// Keras 3's `mnist.load_data()` without network, as Python 3.11 prints the chain.
const KERAS_OFFLINE: &str = r#"Downloading data from https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz
Traceback (most recent call last):
  File "/usr/lib/python3.11/urllib/request.py", line 1348, in do_open
    h.request(req.get_method(), req.selector, req.data, headers,
  File "/usr/lib/python3.11/http/client.py", line 1286, in request
    self._send_request(method, url, body, headers, encode_chunked)
  File "/usr/lib/python3.11/socket.py", line 962, in getaddrinfo
    for res in _socket.getaddrinfo(host, port, family, type, proto, flags):
               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
socket.gaierror: [Errno -3] Temporary failure in name resolution

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/usr/local/lib/python3.11/dist-packages/keras/src/utils/file_utils.py", line 295, in get_file
    urlretrieve(origin, download_target)
  File "/usr/lib/python3.11/urllib/request.py", line 1351, in do_open
    raise URLError(err)
urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/workspace/cnn.py", line 11, in <module>
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
                                           ^^^^^^^^^^^^^^^^^
  File "/usr/local/lib/python3.11/dist-packages/keras/src/datasets/mnist.py", line 59, in load_data
    path = get_file(
           ^^^^^^^^^
  File "/usr/local/lib/python3.11/dist-packages/keras/src/utils/file_utils.py", line 299, in get_file
    raise Exception(error_msg.format(origin, e.errno, e.reason))
Exception: URL fetch failure on https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz: None -- [Errno -3] Temporary failure in name resolution"#;

#[test]
fn keras_load_data_offline_is_no_network() {
    let (class, error, hint) = permanent(KERAS_OFFLINE);
    assert_eq!(class, Class::NoNetwork);
    assert!(
        error.starts_with("Exception: URL fetch failure on https://"),
        "{error}"
    );
    assert!(error.ends_with("(at cnn.py:11)"), "{error}");
    assert_eq!(
        hint,
        "training containers have no network: put the data in the repository or mount it with \
         [data] (see README)"
    );
    let tb = traceback::read(&KERAS_OFFLINE.lines().collect::<Vec<_>>()).unwrap();
    assert_eq!(tb.exceptions.len(), 3, "{tb:?}");
    assert!(tb.exceptions[0].starts_with("socket.gaierror"));
}

#[test]
fn network_errors_of_urllib_and_requests() {
    let cases = [
        "urllib.error.URLError: <urlopen error [Errno 101] Network is unreachable>",
        "socket.gaierror: [Errno -2] Name or service not known",
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='archive.ics.uci.edu', port=443): Max retries exceeded with url: /ml/machine-learning-databases/iris/iris.data (Caused by NameResolutionError(\"<urllib3.connection.HTTPSConnection object at 0x7f3c>: Failed to resolve 'archive.ics.uci.edu' ([Errno -3] Temporary failure in name resolution)\"))",
        "urllib3.exceptions.MaxRetryError: HTTPSConnectionPool(host='x', port=443): Max retries exceeded",
        "urllib3.exceptions.NewConnectionError: <urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno 101] Network is unreachable",
    ];
    for last in cases {
        let out = format!(
            "Traceback (most recent call last):\n  File \"/workspace/get.py\", line 4, in <module>\n    fetch()\n{last}"
        );
        assert_eq!(permanent(&out).0, Class::NoNetwork, "{last}");
    }
    // A wrapper of the script's own, raised while handling the network error.
    let wrapped = "Traceback (most recent call last):\n  File \"/workspace/get.py\", line 4, in load\n    urlretrieve(URL, 'iris.csv')\nurllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>\n\nThe above exception was the direct cause of the following exception:\n\nTraceback (most recent call last):\n  File \"/workspace/get.py\", line 9, in <module>\n    load()\nRuntimeError: could not load the data set";
    let (class, error, _) = permanent(wrapped);
    assert_eq!(class, Class::NoNetwork);
    assert_eq!(
        error,
        "RuntimeError: could not load the data set (at get.py:9)"
    );
}

/// scikit-learn refusing a parameter value, deep in site-packages.
const SKLEARN_VALUE_ERROR: &str = r#"Traceback (most recent call last):
  File "/workspace/knn.py", line 22, in <module>
    knn.fit(X_train, y_train)
  File "/usr/lib/python3/dist-packages/sklearn/base.py", line 1151, in wrapper
    return fit_method(estimator, *args, **kwargs)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3/dist-packages/sklearn/neighbors/_classification.py", line 228, in fit
    return self._fit(X, y)
           ^^^^^^^^^^^^^^^
  File "/usr/lib/python3/dist-packages/sklearn/neighbors/_base.py", line 569, in _fit
    raise ValueError(
ValueError: Expected n_neighbors <= n_samples,  but n_samples = 5, n_neighbors = 9"#;

#[test]
fn a_library_value_error_may_depend_on_the_parameters() {
    let d = crashed(SKLEARN_VALUE_ERROR);
    assert_eq!(d.class, Class::Library);
    assert!(!d.is_permanent());
    assert_eq!(d.hint(), None);
    assert_eq!(
        d.error.as_deref(),
        Some(
            "ValueError: Expected n_neighbors <= n_samples,  but n_samples = 5, n_neighbors = 9 \
             (at knn.py:22)"
        )
    );
    // Even when raised after a metric line of an earlier epoch.
    let lines: Vec<&str> = std::iter::once("epoch 1 accuracy=0.8")
        .chain(SKLEARN_VALUE_ERROR.lines())
        .collect();
    let ending = Ending {
        code: 1,
        oom_killed: false,
        metric_reported: true,
    };
    assert_eq!(triage(ending, &lines).class, Class::Library);
    let torch = "Traceback (most recent call last):\n  File \"/workspace/train.py\", line 40, in <module>\n    out = model(x)\n  File \"/usr/local/lib/python3.11/dist-packages/torch/nn/modules/conv.py\", line 456, in _conv_forward\n    return F.conv2d(input, weight, bias, self.stride,\nRuntimeError: Calculated padded input size per channel: (2 x 2). Kernel size: (3 x 3). Kernel size can't be greater than actual input size";
    assert_eq!(crashed(torch).class, Class::Library);
}

#[test]
fn out_of_memory_may_depend_on_the_parameters() {
    let killed = triage(
        Ending {
            code: 137,
            oom_killed: true,
            metric_reported: true,
        },
        &["Epoch 1/5", "accuracy=0.5"],
    );
    assert_eq!(killed.class, Class::OutOfMemory);
    assert!(!killed.is_permanent());
    let numpy = "Traceback (most recent call last):\n  File \"/workspace/train.py\", line 8, in <module>\n    x = np.zeros((n, n))\nnumpy.core._exceptions._ArrayMemoryError: Unable to allocate 7.28 TiB for an array with shape (1000000, 1000000) and data type float64";
    assert_eq!(crashed(numpy).class, Class::OutOfMemory);
    let plain = "Traceback (most recent call last):\n  File \"/workspace/train.py\", line 8, in <module>\n    big = [0] * n\nMemoryError";
    let d = crashed(plain);
    assert_eq!(d.class, Class::OutOfMemory);
    assert_eq!(d.error.as_deref(), Some("MemoryError (at train.py:8)"));
}

#[test]
fn an_error_after_the_metric_is_permanent() {
    let out = [
        "Epoch 3/3",
        "accuracy=0.9",
        "saving the plot",
        "Traceback (most recent call last):",
        "  File \"/workspace/train.py\", line 51, in <module>",
        "    plt.savefig(os.path.join(out_dir, 'curve.png'))",
        "                             ^^^^^^^",
        "NameError: name 'out_dir' is not defined",
    ];
    let ending = Ending {
        code: 1,
        oom_killed: false,
        metric_reported: true,
    };
    let d = triage(ending, &out);
    assert_eq!(d.class, Class::AfterMetric);
    assert!(d.is_permanent());
    assert_eq!(
        d.error.as_deref(),
        Some("NameError: name 'out_dir' is not defined (at train.py:51)")
    );
    let hint = d.hint().unwrap();
    assert!(
        hint.contains("reported its metric, then failed at train.py:51"),
        "{hint}"
    );
    // The same error before any metric is not known to be permanent.
    let before = Ending {
        metric_reported: false,
        ..ending
    };
    assert_eq!(triage(before, &out).class, Class::Unknown);
    // stdout and stderr reach the engine as two streams: the metric line printed just before the
    // crash can land among the frames (as it did on a real engine).
    let swapped = [
        "Traceback (most recent call last):",
        "  File \"/workspace/train.py\", line 5, in <module>",
        "accuracy=0.95",
        "    print('val_accuracy', results['val_accuracy'])",
        "                          ~~~~~~~^^^^^^^^^^^^^^^^",
        "KeyError: 'val_accuracy'",
    ];
    let d = triage(ending, &swapped);
    assert_eq!(d.class, Class::AfterMetric);
    assert_eq!(
        d.error.as_deref(),
        Some("KeyError: 'val_accuracy' (at train.py:5)")
    );
}

#[test]
fn exits_that_show_no_error_are_unknown() {
    let clean = triage(
        Ending {
            code: 0,
            oom_killed: false,
            metric_reported: false,
        },
        &["python3: can't open file '/workspace/train.py': [Errno 2] No such file or directory"],
    );
    assert_eq!(clean.class, Class::Unknown, "an exit code of 0 is no crash");
    let killed = crashed("Epoch 1/5\nKilled");
    assert_eq!(killed.class, Class::Unknown);
    assert_eq!(killed.error, None);
    assert_eq!(crashed("").class, Class::Unknown);
    // An unrelated traceback printed and handled long before does not chain into the last one.
    let out = "Traceback (most recent call last):\n  File \"/workspace/a.py\", line 1, in <module>\nFileNotFoundError: [Errno 2] No such file or directory: 'cache.npz'\nrecomputing\nDuring handling of nothing\nTraceback (most recent call last):\n  File \"/workspace/a.py\", line 9, in <module>\n    go()\nKeyError: 'label'";
    let d = crashed(out);
    assert_eq!(d.class, Class::Unknown);
    assert_eq!(d.error.as_deref(), Some("KeyError: 'label' (at a.py:9)"));
}

#[test]
fn a_traceback_the_script_printed_and_went_on_from_is_not_its_end() {
    // A download retried from a cache: the network error was logged, then the script ran on and
    // failed otherwise, without a traceback.
    let mut out = vec![
        "ERROR:root:download failed, using the cached copy",
        "Traceback (most recent call last):",
        "  File \"/workspace/train.py\", line 12, in load",
        "    urlretrieve(URL, 'iris.csv')",
        "urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>",
    ];
    let progress: Vec<String> = (1..=30).map(|i| format!("epoch {i} loss=0.5")).collect();
    out.extend(progress.iter().map(String::as_str));
    out.push("giving up: the loss does not go down");
    let d = triage(
        Ending {
            code: 1,
            oom_killed: false,
            metric_reported: false,
        },
        &out,
    );
    assert_eq!(d.class, Class::Unknown);
    assert_eq!(d.error, None);
}

#[test]
fn a_notebook_export_fails_like_any_script() {
    let out = r#"Traceback (most recent call last):
  File "/workspace/Untitled.py", line 27, in <module>
    get_ipython().run_line_magic('matplotlib', 'inline')
    ^^^^^^^^^^^
NameError: name 'get_ipython' is not defined"#;
    let (class, error, hint) = permanent(out);
    assert_eq!(class, Class::NotebookOnly);
    assert_eq!(
        error,
        "NameError: name 'get_ipython' is not defined (at Untitled.py:27)"
    );
    assert!(hint.contains("Jupyter"), "{hint}");
    let other = out.replace("get_ipython", "plot_digits");
    assert_eq!(crashed(&other).class, Class::Unknown);
}

#[test]
fn a_file_past_the_disk_limit_stops_the_run_and_names_the_setting() {
    let out = r#"Traceback (most recent call last):
  File "/workspace/train.py", line 7, in <module>
    f.write(block)
OSError: [Errno 27] File too large"#;
    let (class, error, hint) = permanent(out);
    assert_eq!(class, Class::DiskFull);
    assert_eq!(error, "OSError: [Errno 27] File too large (at train.py:7)");
    assert!(hint.contains("[resources] disk"), "{hint}");
    let full = "Traceback (most recent call last):\n  File \"/workspace/train.py\", line 3, in <module>\n    \
                np.save('/tmp/x.npy', a)\nOSError: [Errno 28] No space left on device";
    assert_eq!(permanent(full).0, Class::DiskFull);
}
