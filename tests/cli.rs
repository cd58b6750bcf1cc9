//! End-to-end runs of the `hypernas` binary on small slices of the embedded NB201 table.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

fn hypernas() -> Command {
    Command::cargo_bin("hypernas").expect("binary built")
}

/// The first `rows` rows of the embedded table as a CSV with an `arch` column.
fn small_csv(dir: &Path, name: &str, rows: usize, skip: usize) -> PathBuf {
    let table = hypernas::data::Table::load("nb201").unwrap();
    let archs = table.column("arch_str").unwrap();
    let acc = table.column("cifar10_test_acc").unwrap();
    let mut text = String::from("arch,acc\n");
    for i in skip..skip + rows {
        text.push_str(&format!("{},{}\n", archs[i], acc[i]));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// A failing run: non-zero exit, one `error:` line, no panic.
fn assert_clean_failure(output: &std::process::Output, needle: &str) {
    let err = stderr_of(output);
    assert!(!output.status.success(), "expected failure, stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("error:"), "{err}");
    assert!(err.contains(needle), "'{needle}' not in: {err}");
}

/// The JSON header of a safetensors file (tensor names and shapes, metadata).
fn safetensors_header(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + len]).unwrap()
}

/// `hypernas weights` for `arch` with `model`, written to `out`.
fn export_weights(model: &Path, arch: &str, out: &Path) -> std::process::Output {
    hypernas()
        .args(["weights", "--arch", arch, "--model"])
        .arg(model)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn train_small(dir: &Path, predictor: &str, seed: u64, name: &str) -> PathBuf {
    let model = dir.join(name);
    hypernas()
        .args([
            "train",
            "--space",
            "nb201",
            "--data",
            "nb201",
            "--target",
            "cifar10_test_acc",
        ])
        .args([
            "--train-size",
            "30",
            "--epochs",
            "4",
            "--predictor",
            predictor,
        ])
        .args(["--seed", &seed.to_string()])
        .arg("--out")
        .arg(&model)
        .assert()
        .success();
    model
}

#[test]
fn train_predict_eval_round_trip() {
    let dir = TempDir::new().unwrap();
    let model = train_small(dir.path(), "hypernas-p", 1, "m.safetensors");
    let input = small_csv(dir.path(), "in.csv", 50, 100);
    let out = dir.path().join("pred.csv");
    hypernas()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let pred = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = pred.lines().collect();
    assert_eq!(lines[0], "arch,prediction");
    assert_eq!(lines.len(), 51);
    let input_text = std::fs::read_to_string(&input).unwrap();
    let first_input_arch = input_text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    assert!(lines[1].starts_with(first_input_arch));
    let value: f64 = lines[1].rsplit(',').next().unwrap().parse().unwrap();
    assert!(value.is_finite());

    let output = hypernas()
        .args(["eval", "--json", "--target", "acc", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&input)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let n = json["metrics"]["n"].as_u64().unwrap();
    let excluded = json["excluded_training_rows"].as_u64().unwrap();
    assert_eq!(n + excluded, 50);
    let tau = json["metrics"]["kendall_tau"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&tau));
}

#[test]
fn eval_leaves_out_the_training_rows() {
    let dir = TempDir::new().unwrap();
    let model = train_small(dir.path(), "np", 3, "m.safetensors");
    let output = hypernas()
        .args(["eval", "--json", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["excluded_training_rows"], 30);
    assert_eq!(json["metrics"]["n"], 15_625 - 30);
}

#[test]
fn same_seed_same_model_file() {
    let dir = TempDir::new().unwrap();
    let a = train_small(dir.path(), "hypernas-p", 7, "a.safetensors");
    let b = train_small(dir.path(), "hypernas-p", 7, "b.safetensors");
    let c = train_small(dir.path(), "hypernas-p", 8, "c.safetensors");
    let read = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(read(&a), read(&b));
    assert_ne!(read(&a), read(&c));
}

#[test]
fn train_file_uses_exactly_its_rows() {
    let dir = TempDir::new().unwrap();
    let train = small_csv(dir.path(), "train.csv", 25, 0);
    let model = dir.path().join("m.safetensors");
    hypernas()
        .args([
            "train",
            "--space",
            "nb201",
            "--target",
            "acc",
            "--predictor",
            "mlp",
            "--epochs",
            "3",
        ])
        .arg("--train-file")
        .arg(&train)
        .arg("--out")
        .arg(&model)
        .assert()
        .success();
    let output = hypernas()
        .args(["eval", "--json", "--target", "cifar10_test_acc", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["excluded_training_rows"], 25);
}

#[test]
fn bad_inputs_fail_cleanly_without_output() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("m.safetensors");
    let run = |args: &[&str]| {
        hypernas()
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };

    assert_clean_failure(
        &run(&["train", "--space", "nb201", "--data", "/no/such.csv"]),
        "neither an embedded",
    );
    assert_clean_failure(
        &run(&["train", "--target", "no_such_column"]),
        "no column 'no_such_column'",
    );
    assert_clean_failure(&run(&["train", "--train-size", "0"]), "--train-size");
    assert_clean_failure(&run(&["train", "--space", "nb999"]), "unknown search space");

    let bad_arch = dir.path().join("bad_arch.csv");
    std::fs::write(
        &bad_arch,
        "arch,acc\n421211,90\n|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|,80\n",
    )
    .unwrap();
    assert_clean_failure(
        &run(&[
            "train",
            "--space",
            "nb201",
            "--target",
            "acc",
            "--train-file",
            bad_arch.to_str().unwrap(),
        ]),
        "unknown NB201 operation 'conv_9x9'",
    );
    let nan = dir.path().join("nan.csv");
    std::fs::write(&nan, "arch,acc\n421211,90\n000000,NaN\n").unwrap();
    assert_clean_failure(
        &run(&[
            "train",
            "--space",
            "nb201",
            "--target",
            "acc",
            "--train-file",
            nan.to_str().unwrap(),
        ]),
        "not finite",
    );
    let dup = dir.path().join("dup.csv");
    std::fs::write(&dup, "arch,acc\n421211,90\n421211,80\n").unwrap();
    assert_clean_failure(
        &run(&[
            "train",
            "--space",
            "nb201",
            "--target",
            "acc",
            "--train-file",
            dup.to_str().unwrap(),
        ]),
        "same architecture",
    );
    assert_clean_failure(&run(&["train", "--lr", "NaN"]), "--lr");
    assert!(!out.exists(), "no model may be written by a failed run");

    let missing_dir = dir.path().join("nope").join("m.safetensors");
    let output = hypernas()
        .args(["train", "--epochs", "1", "--out"])
        .arg(&missing_dir)
        .output()
        .unwrap();
    assert_clean_failure(&output, "does not exist");
}

#[test]
fn usage_errors_are_one_line() {
    let missing_out = hypernas()
        .args(["train", "--train-size", "10"])
        .output()
        .unwrap();
    assert_clean_failure(&missing_out, "--out");
    assert_eq!(missing_out.status.code(), Some(2));
    let bad_predictor = hypernas()
        .args(["train", "--predictor", "gpt", "--out", "x.safetensors"])
        .output()
        .unwrap();
    assert_clean_failure(&bad_predictor, "gpt");
    let help = hypernas().args(["train", "--help"]).output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--train-size"));
}

#[test]
fn corrupt_or_foreign_models_are_rejected() {
    let dir = TempDir::new().unwrap();
    let model = train_small(dir.path(), "np", 0, "m.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    let pred = dir.path().join("p.csv");
    let predict = |m: &Path| {
        hypernas()
            .args(["predict", "--model"])
            .arg(m)
            .arg("--out")
            .arg(&pred)
            .output()
            .unwrap()
    };

    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a model at all").unwrap();
    assert_clean_failure(&predict(&garbage), "not a hypernas model");

    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    assert_clean_failure(&predict(&truncated), "corrupt");

    let marker = br#"\"format_version\":1"#;
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("header layout changed")
        + marker.len()
        - 1;
    let newer = dir.path().join("newer.safetensors");
    let mut patched = bytes.clone();
    patched[at] = b'9';
    std::fs::write(&newer, &patched).unwrap();
    assert_clean_failure(&predict(&newer), "format version 9");

    assert_clean_failure(
        &predict(&dir.path().join("absent.safetensors")),
        "cannot read model",
    );
    assert!(!pred.exists());
}

#[test]
fn bench_writes_tables_and_plot() {
    let dir = TempDir::new().unwrap();
    let out_dir = dir.path().join("bench");
    let output = hypernas()
        .args([
            "bench",
            "nb201",
            "--sizes",
            "20,40",
            "--seeds",
            "2",
            "--predictors",
            "np,mlp",
        ])
        .args(["--epochs", "3", "--jobs", "2", "--out-dir"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("| np |") && stdout.contains("N=40"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 8);
    assert!(
        std::fs::read_to_string(out_dir.join("tau.svg"))
            .unwrap()
            .starts_with("<svg")
    );
    let summary = std::fs::read_to_string(out_dir.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 1 + 4);
}

#[test]
fn demo_runs_and_reports_a_top_10() {
    let output = hypernas()
        .args([
            "demo",
            "--train-size",
            "30",
            "--epochs",
            "3",
            "--predictor",
            "np",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Kendall tau"), "{stdout}");
    assert!(stdout.contains("predicted top-10"), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.contains("|+|")).count(),
        10,
        "{stdout}"
    );
}

#[test]
fn hypernas_trains_on_images_and_exports_generated_weights() {
    let dir = TempDir::new().unwrap();
    let model = dir.path().join("hn.safetensors");
    let log = dir.path().join("log.jsonl");
    let output = hypernas()
        .args(["train", "--predictor", "hypernas", "--train-size", "30"])
        .args(["--epochs", "3", "--aux-unlabelled", "5", "--out"])
        .arg(&model)
        .arg("--train-log")
        .arg(&log)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("u (predict, hyper)"));
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(log.lines().count(), 3);
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert!(last["hyper_loss"].as_f64().unwrap() > 0.0);
    assert_eq!(last["u"].as_array().unwrap().len(), 2);

    let weights = dir.path().join("w.safetensors");
    let output = export_weights(&model, "333333", &weights);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("held-out CIFAR-10 images"), "{stdout}");
    let header = safetensors_header(&weights);
    // stem + 3 cells x 6 convs + 2 residual blocks x 3 + classifier
    assert_eq!(header.as_object().unwrap().len() - 1, 1 + 18 + 6 + 1);
    assert_eq!(
        header["001.conv3x3"]["shape"],
        serde_json::json!([8, 3, 3, 3])
    );
    assert!(
        header["__metadata__"]["program"]
            .as_str()
            .unwrap()
            .contains("conv")
    );

    // a model without a hypernetwork has no weights to export
    let plain = train_small(dir.path(), "np", 0, "np.safetensors");
    let output = export_weights(&plain, "333333", &dir.path().join("x.safetensors"));
    assert_clean_failure(&output, "no hypernetwork");
    assert!(!dir.path().join("x.safetensors").exists());
}

#[test]
fn bad_aux_images_fail_cleanly() {
    let dir = TempDir::new().unwrap();
    let images = dir.path().join("cifar");
    std::fs::create_dir(&images).unwrap();
    // one record and a half: truncated
    std::fs::write(images.join("data_batch_1.bin"), vec![3u8; 3073 + 100]).unwrap();
    let model = dir.path().join("m.safetensors");
    let output = hypernas()
        .args(["train", "--predictor", "hypernas", "--train-size", "20"])
        .args(["--epochs", "1", "--aux-data"])
        .arg(&images)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert_clean_failure(&output, "data_batch_1.bin");
    assert!(!model.exists());
    let output = hypernas()
        .args(["train", "--predictor", "hypernas", "--preference-q", "1"])
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert_clean_failure(&output, "--preference-q");
}

/// NB101 and DARTS through the same commands as NB201: train full HyperNAS on a few rows of the
/// embedded table, score a CSV, export the generated weights of one architecture.
#[test]
fn nb101_and_darts_train_predict_and_export_weights() {
    let dir = TempDir::new().unwrap();
    let cases = [
        (
            "nb101",
            "0100110001000000010010000010000001000000010000000:input|conv3x3-bn-relu|maxpool3x3|conv3x3-bn-relu|conv3x3-bn-relu|conv1x1-bn-relu|output",
        ),
        (
            "darts",
            "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",
        ),
    ];
    for (space, arch) in cases {
        let model = dir.path().join(format!("{space}.safetensors"));
        let output = hypernas()
            .args(["train", "--space", space, "--predictor", "hypernas"])
            .args(["--train-size", "20", "--epochs", "2", "--out"])
            .arg(&model)
            .output()
            .unwrap();
        assert!(output.status.success(), "{space}: {}", stderr_of(&output));

        let input = dir.path().join(format!("{space}.csv"));
        std::fs::write(&input, format!("arch\n\"{arch}\"\n")).unwrap();
        let pred = dir.path().join(format!("{space}-pred.csv"));
        let output = hypernas()
            .args(["predict", "--model"])
            .arg(&model)
            .arg("--data")
            .arg(&input)
            .arg("--out")
            .arg(&pred)
            .output()
            .unwrap();
        assert!(output.status.success(), "{space}: {}", stderr_of(&output));
        assert_eq!(std::fs::read_to_string(&pred).unwrap().lines().count(), 2);

        let output = hypernas()
            .args(["eval", "--json", "--model"])
            .arg(&model)
            .output()
            .unwrap();
        assert!(output.status.success(), "{space}: {}", stderr_of(&output));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json["target"], "val_acc");
        assert_eq!(json["excluded_training_rows"], 20);

        let weights = dir.path().join(format!("{space}-w.safetensors"));
        let output = export_weights(&model, arch, &weights);
        assert!(output.status.success(), "{space}: {}", stderr_of(&output));
        assert!(weights.exists());
    }
}

/// A user's own NB101 table as JSON lines (`{"arch": {"matrix", "ops"}, "val_acc"}`), the
/// format the README shows how to dump from the official release.
#[test]
fn nb101_json_lines_train_and_eval() {
    use hypernas::space::SearchSpace;
    let dir = TempDir::new().unwrap();
    let table = hypernas::data::Table::load("nb101").unwrap();
    let space = hypernas::space::nb101::Nb101Space::default();
    let accs = table.column("val_acc").unwrap();
    let mut text = String::new();
    for (arch, acc) in table.column("arch").unwrap().iter().zip(&accs).take(60) {
        let json = space.parse(arch).unwrap().to_json();
        text.push_str(&format!("{{\"arch\": {json}, \"val_acc\": {acc}}}\n"));
    }
    let data = dir.path().join("nb101.jsonl");
    std::fs::write(&data, text).unwrap();
    let model = dir.path().join("m.safetensors");
    let output = hypernas()
        .args(["train", "--space", "nb101", "--target", "val_acc", "--data"])
        .arg(&data)
        .args(["--train-size", "30", "--epochs", "2", "--out"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let output = hypernas()
        .args(["eval", "--json", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["metrics"]["n"], 30);
}

#[test]
fn bad_nb101_and_darts_strings_fail_cleanly() {
    let dir = TempDir::new().unwrap();
    let cases = [
        (
            "nb101",
            "0110000100010000:input|conv5x5|maxpool3x3|output",
            "unknown NB101 operation 'conv5x5'",
        ),
        (
            "nb101",
            "0100000000000000:input|conv3x3-bn-relu|maxpool3x3|output",
            "not connected",
        ),
        (
            "darts",
            "Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2, 3, 4, 5], reduce=[], reduce_concat=[2, 3, 4, 5])",
            "8",
        ),
        (
            "darts",
            "0-4,1-3,0-2,2-3,2-3,0-3,2-6,7-5;0-3,1-3,1-1,0-5,2-3,0-2,4-4,3-1",
            "node",
        ),
    ];
    for (k, (space, arch, needle)) in cases.iter().enumerate() {
        let input = dir.path().join(format!("bad{k}.csv"));
        std::fs::write(&input, format!("arch,acc\n\"{arch}\",1\n\"{arch}\",2\n")).unwrap();
        let output = hypernas()
            .args([
                "train", "--space", space, "--target", "acc", "--epochs", "1",
            ])
            .arg("--train-file")
            .arg(&input)
            .arg("--out")
            .arg(dir.path().join("m.safetensors"))
            .output()
            .unwrap();
        assert_clean_failure(&output, needle);
        assert!(!dir.path().join("m.safetensors").exists());
    }
}

/// A stand-in training script: a deterministic pseudo-accuracy from the architecture string,
/// after a short sleep; with FAIL set it fails (exit 1) for about a third of them.
fn eval_script(dir: &Path) -> PathBuf {
    let script = dir.join("eval.sh");
    std::fs::write(
        &script,
        "sleep 0.05\nsum=$(printf '%s' \"$1\" | cksum | cut -d' ' -f1)\n\
         if [ -n \"$FAIL\" ] && [ $((sum % 3)) -eq 0 ]; then echo broken >&2; exit 1; fi\n\
         echo \"accuracy: $((80 + sum % 15)).$((sum % 100))\"\n",
    )
    .unwrap();
    script
}

fn journal_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Kill a search with a command oracle mid-run, resume it: every evaluation is in the journal
/// exactly once, and the budget is spent.
#[test]
fn a_killed_search_resumes_without_losing_or_repeating_evaluations() {
    let dir = TempDir::new().unwrap();
    let script = eval_script(dir.path());
    let run_dir = dir.path().join("run");
    let template = format!("sh {} {{arch}}", script.display());
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("hypernas"))
        .args(["search", "--space", "nb201", "--strategy", "evolution"])
        .args(["--budget", "24", "--evaluate-cmd", &template, "--run-dir"])
        .arg(&run_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal = run_dir.join("journal.jsonl");
    let start = std::time::Instant::now();
    while journal_lines(&journal).len() < 6 {
        assert!(start.elapsed().as_secs() < 60, "search made no progress");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = journal_lines(&journal).len();
    assert!(before < 24, "the search finished before it was killed");

    let output = hypernas()
        .args(["search", "--resume"])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("resuming after"));
    let records = journal_lines(&journal);
    assert_eq!(records.len(), 24);
    let archs: std::collections::HashSet<&str> = records
        .iter()
        .map(|r| r["arch"].as_str().unwrap())
        .collect();
    assert_eq!(archs.len(), 24, "an architecture was evaluated twice");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["query"], i + 1);
        assert_eq!(r["status"], "ok");
    }
    let best = std::fs::read_to_string(run_dir.join("best.txt")).unwrap();
    assert!(archs.contains(best.trim()));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["queries"], 24);
    assert!(run_dir.join("best.svg").exists());

    // a finished run refuses to start over in the same directory
    let output = hypernas()
        .args([
            "search",
            "--space",
            "nb201",
            "--evaluate-cmd",
            &template,
            "--run-dir",
        ])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert_clean_failure(&output, "already holds a search");
}

/// Failing jobs are retried, then recorded as failed, and the search goes on.
#[test]
fn failed_evaluations_are_retried_then_recorded() {
    let dir = TempDir::new().unwrap();
    let script = eval_script(dir.path());
    let run_dir = dir.path().join("run");
    let output = hypernas()
        .env("FAIL", "1")
        .args(["search", "--space", "nb201", "--strategy", "random"])
        .args(["--budget", "12", "--workers", "3", "--retries", "1"])
        .args([
            "--evaluate-cmd",
            &format!("sh {} {{arch}}", script.display()),
        ])
        .arg("--run-dir")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let records = journal_lines(&run_dir.join("journal.jsonl"));
    assert_eq!(records.len(), 12);
    let failed: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["status"] == "failed").collect();
    assert!(!failed.is_empty() && failed.len() < 12, "{records:?}");
    for r in &failed {
        assert_eq!(r["attempts"], 2);
        assert!(r["message"].as_str().unwrap().contains("broken"), "{r}");
    }
}

/// A search whose every evaluation fails still ends cleanly: journal and summary, no best.
#[test]
fn a_search_with_no_successful_evaluation_ends_cleanly() {
    let dir = TempDir::new().unwrap();
    let run_dir = dir.path().join("run");
    let output = hypernas()
        .args(["search", "--space", "nb201", "--strategy", "random"])
        .args([
            "--budget",
            "3",
            "--retries",
            "0",
            "--evaluate-cmd",
            "echo {arch} has no accuracy",
        ])
        .arg("--run-dir")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("no successful evaluation in 3 queries")
    );
    assert_eq!(journal_lines(&run_dir.join("journal.jsonl")).len(), 3);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["failed"], 3);
    assert!(summary["best"].is_null());
    assert!(!run_dir.join("best.txt").exists());
}

/// Predictor-guided search on the embedded NB201 table.
#[test]
fn predictor_guided_search_on_the_table() {
    let dir = TempDir::new().unwrap();
    let run_dir = dir.path().join("run");
    let output = hypernas()
        .args(["search", "--budget", "16", "--initial", "8", "--top-k", "4"])
        .args(["--candidates", "200", "--epochs", "5", "--predictor", "np"])
        .arg("--run-dir")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let records = journal_lines(&run_dir.join("journal.jsonl"));
    assert_eq!(records.len(), 16);
    assert!(records[8]["predicted"].is_number());
    assert!(run_dir.join("predicted.svg").exists());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("best after 16 queries"), "{stdout}");
}

/// The two MBConv spaces on their embedded tables: a tiny bench, and OFA-MobileNetV3 with the
/// hypernetwork task from training to exported weights, the architecture given in the
/// DyNAS-T data's own form.
#[test]
fn mbconv_spaces_bench_and_export_weights() {
    let dir = TempDir::new().unwrap();
    for space in ["ofa-mbv3", "anb-mbconv"] {
        let out_dir = dir.path().join(space);
        let output = hypernas()
            .args(["bench", space, "--sizes", "20", "--seeds", "1"])
            .args(["--predictors", "np,hypernas-p,mlp", "--epochs", "2"])
            .args(["--jobs", "2", "--out-dir"])
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "{space}: {}", stderr_of(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("| hypernas-p |"), "{stdout}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(json["runs"].as_array().unwrap().len(), 3);
        assert!(json["caveat"].as_str().is_some(), "{space}: {json}");
    }

    let model = dir.path().join("ofa.safetensors");
    let output = hypernas()
        .args(["train", "--space", "ofa", "--predictor", "hypernas"])
        .args(["--train-size", "16", "--epochs", "1", "--out"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let weights = dir.path().join("ofa-w.safetensors");
    let data_form = "5,7,5,5,3,3,3,7,5,5,3,7,7,3,3,3,5,5,5,5;4,3,4,4,4,6,3,4,4,3,4,3,3,6,6,6,4,3,4,4;2,3,2,4,3;224";
    let output = export_weights(&model, data_form, &weights);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let header = safetensors_header(&weights);
    // stem, first block (dw + project), 14 layers x (expand, dw, project), head conv, linear
    assert_eq!(header.as_object().unwrap().len() - 1, 1 + 2 + 14 * 3 + 2);
    assert!(
        header
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.ends_with("dwconv7x7"))
    );

    let output = export_weights(&model, "ks=3;e=3;d=2", &dir.path().join("x.safetensors"));
    assert_clean_failure(&output, "ks has 1 values");
}

/// The extra benchmarks (no candidate networks): a tiny bench on each embedded table, and
/// the hypernetwork predictor refused with one line.
#[test]
fn extra_benchmarks_bench_and_refuse_the_hypernetwork_task() {
    let dir = TempDir::new().unwrap();
    for space in ["nb-macro", "tnb101-micro", "nb-nlp", "nb-graph"] {
        let out_dir = dir.path().join(space);
        let output = hypernas()
            .args(["bench", space, "--sizes", "12", "--seeds", "1"])
            .args(["--epochs", "2", "--jobs", "1", "--out-dir"])
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "{space}: {}", stderr_of(&output));
        let summary = std::fs::read_to_string(out_dir.join("summary.csv")).unwrap();
        // the defaults without a candidate network: np, hypernas-p, mlp
        assert_eq!(summary.lines().count(), 1 + 3, "{space}: {summary}");
        assert!(!summary.contains("hypernas,"), "{space}: {summary}");
        let output = hypernas()
            .args(["train", "--space", space, "--data", space, "--predictor"])
            .args(["hypernas", "--train-size", "10", "--epochs", "1", "--out"])
            .arg(dir.path().join("m.safetensors"))
            .output()
            .unwrap();
        assert_clean_failure(&output, "has no candidate network");
    }
}

/// The ViT space on its embedded Auto-Prox table: train full HyperNAS (the tiny ViT candidate
/// network) on a few rows, evaluate on the rest, export the generated weights; the
/// from-scratch table and a bad string.
#[test]
fn vit_trains_with_candidate_networks_and_evaluates() {
    let dir = TempDir::new().unwrap();
    let model = dir.path().join("vit.safetensors");
    let output = hypernas()
        .args(["train", "--space", "autoformer", "--predictor", "hypernas"])
        .args(["--train-size", "12", "--epochs", "1", "--out"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let output = hypernas()
        .args(["eval", "--json", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["target"], "c100_kd_acc");
    assert_eq!(json["metrics"]["n"], 188);
    let arch =
        "d=192;L=12;mlp=3.5,4.0,3.5,4.0,3.5,3.5,4.0,3.5,4.0,4.0,4.0,3.5;h=4,4,3,4,3,3,4,4,3,3,3,4";
    let output = export_weights(&model, arch, &dir.path().join("w.safetensors"));
    assert!(output.status.success(), "{}", stderr_of(&output));

    let out_dir = dir.path().join("bench");
    let output = hypernas()
        .args(["bench", "vit", "--data", "vit-scratch", "--sizes", "20"])
        .args([
            "--seeds",
            "1",
            "--predictors",
            "hypernas-p,mlp",
            "--epochs",
            "2",
        ])
        .arg("--out-dir")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("c100_base_acc"), "{stdout}");

    let input = dir.path().join("bad.csv");
    std::fs::write(&input, "arch,acc\n\"d=192;L=12;mlp=3.5;h=4\",1\n").unwrap();
    let output = hypernas()
        .args(["train", "--space", "vit", "--target", "acc", "--data"])
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("bad.safetensors"))
        .output()
        .unwrap();
    assert_clean_failure(&output, "1 MLP ratios for depth 12");
}

/// The PiT space on its embedded Auto-Prox table: a tiny bench with full HyperNAS (the PiT
/// candidate network) and NP.
#[test]
fn pit_benches_with_candidate_networks() {
    let dir = TempDir::new().unwrap();
    let out_dir = dir.path().join("bench");
    let output = hypernas()
        .args(["bench", "pit", "--sizes", "15", "--seeds", "1"])
        .args(["--predictors", "hypernas,np", "--epochs", "1"])
        .arg("--out-dir")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("| hypernas |") && stdout.contains("c100_kd_acc"),
        "{stdout}"
    );
}
