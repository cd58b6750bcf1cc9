//! Oracles: how a search gets the accuracy of an architecture.
//!
//! A [`TableOracle`] looks accuracies up in a benchmark table (instant, for simulated searches);
//! a [`CommandOracle`] runs a user command per architecture (real training), in parallel, with a
//! timeout and retries, and reads the accuracy from the command's output.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Outcome of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The architecture string as given.
    pub arch: String,
    /// None when failed.
    pub accuracy: Option<f64>,
    pub status: EvalStatus,
    /// How many tries were made.
    pub attempts: u32,
    /// Wall time over all attempts.
    pub seconds: f64,
    /// Why it failed (one line), None when ok.
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalStatus {
    Ok,
    Failed,
}

impl Evaluation {
    pub fn ok(arch: &str, accuracy: f64, attempts: u32, seconds: f64) -> Self {
        Evaluation {
            arch: arch.to_string(),
            accuracy: Some(accuracy),
            status: EvalStatus::Ok,
            attempts,
            seconds,
            message: None,
        }
    }

    pub fn failed(arch: &str, message: &str, attempts: u32, seconds: f64) -> Self {
        Evaluation {
            arch: arch.to_string(),
            accuracy: None,
            status: EvalStatus::Failed,
            attempts,
            seconds,
            message: Some(one_line(message, 300)),
        }
    }
}

pub trait Oracle: Send + Sync {
    /// Evaluate `archs` (distinct, canonical strings); call `on_done` once per architecture, in
    /// completion order, as soon as each finishes (so the caller can journal it before the next
    /// finishes).
    fn evaluate(&self, archs: &[String], on_done: &mut dyn FnMut(Evaluation));
    /// One line for logs, e.g. "table nb201 (embedded), column cifar10_test_acc" or
    /// "command 'python train.py ...' (4 workers, timeout 3600 s, 2 retries)".
    fn describe(&self) -> String;
}

// ---------------------------------------------------------------------------------------------
// Table oracle

/// Accuracies looked up by exact architecture key (the caller keys the table and the search the
/// same way, identity or canonical).
#[derive(Debug, Clone)]
pub struct TableOracle {
    pub values: HashMap<String, f64>,
    pub description: String,
}

impl TableOracle {
    pub fn new(pairs: impl IntoIterator<Item = (String, f64)>, description: String) -> Self {
        TableOracle {
            values: pairs.into_iter().collect(),
            description,
        }
    }
}

impl Oracle for TableOracle {
    fn evaluate(&self, archs: &[String], on_done: &mut dyn FnMut(Evaluation)) {
        for arch in archs {
            let eval = match self.values.get(arch) {
                Some(&acc) if acc.is_finite() => Evaluation::ok(arch, acc, 1, 0.0),
                Some(_) => Evaluation::failed(arch, "not a finite accuracy in the table", 1, 0.0),
                None => Evaluation::failed(arch, "not in the table", 1, 0.0),
            };
            on_done(eval);
        }
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Command oracle

/// How to run the evaluation command.
#[derive(Debug, Clone)]
pub struct CommandConfig {
    /// Shell command line run with `sh -c`. Placeholders: `{arch}` (required; substituted
    /// shell-quoted, so write it bare, not inside quotes), `{out}` (a fresh file path per
    /// attempt, shell-quoted; the command may write the accuracy there), `{id}` (the job
    /// number). Left alone: `${VAR}`, braces around anything but a name (`{}`), and unknown
    /// names inside quotes (`awk '{print}'`); outside quotes an unknown `{name}` is an error
    /// (likely a typo) unless written `\{name}`.
    pub template: String,
    /// Jobs run at once (>= 1).
    pub workers: usize,
    /// Per attempt; `Duration::MAX` means no limit.
    pub timeout: Duration,
    /// Extra attempts after a failed one.
    pub retries: u32,
    /// Job output files go to `work_dir/jobs/`. The command runs in the caller's current
    /// directory, so relative paths in the template mean what the user typed.
    pub work_dir: PathBuf,
}

pub struct CommandOracle {
    config: CommandConfig,
    pieces: Vec<Piece>,
    jobs_dir: PathBuf,
    /// Job numbers continue across `evaluate` calls and past files left by an earlier run in
    /// the same work dir, so `{out}` paths never collide with old results.
    next_id: AtomicU64,
}

/// A parsed template: literal text and placeholders.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Arch,
    Out,
    Id,
}

/// Captured output kept per stream: only the tail matters (last line), and a chatty command
/// must not grow memory without bound.
const OUTPUT_TAIL_BYTES: usize = 64 * 1024;
/// How long to wait for the output pipes to close once the process group is dead; only a
/// process that left the group (setsid) can hold them open longer.
const PIPE_GRACE: Duration = Duration::from_secs(1);
const MAX_POLL: Duration = Duration::from_millis(20);

impl CommandOracle {
    pub fn new(config: CommandConfig) -> Result<Self> {
        let pieces = parse_template(&config.template)?;
        if config.workers == 0 {
            bail!("the number of workers must be at least 1");
        }
        if config.timeout.is_zero() {
            bail!("the timeout must be positive");
        }
        let work_dir = std::path::absolute(&config.work_dir)
            .with_context(|| format!("bad work dir {}", config.work_dir.display()))?;
        let jobs_dir = work_dir.join("jobs");
        fs::create_dir_all(&jobs_dir)
            .with_context(|| format!("could not create {}", jobs_dir.display()))?;
        let first_id = last_job_id(&jobs_dir) + 1;
        Ok(CommandOracle {
            config,
            pieces,
            jobs_dir,
            next_id: AtomicU64::new(first_id),
        })
    }

    pub fn config(&self) -> &CommandConfig {
        &self.config
    }

    /// The command line for one attempt.
    fn expand(&self, arch: &str, out: &Path, id: u64) -> String {
        let mut line = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => line.push_str(t),
                Piece::Arch => line.push_str(&shell_quote(arch)),
                Piece::Out => line.push_str(&shell_quote(&out.to_string_lossy())),
                Piece::Id => line.push_str(&id.to_string()),
            }
        }
        line
    }

    /// All attempts for one architecture.
    fn run_job(&self, arch: &str) -> Evaluation {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let max_attempts = self.config.retries.saturating_add(1);
        let mut reason = String::new();
        for attempt in 1..=max_attempts {
            let out = self.jobs_dir.join(format!("{id:06}-a{attempt}.out"));
            match self.run_attempt(arch, id, &out) {
                Ok(acc) => {
                    return Evaluation::ok(arch, acc, attempt, start.elapsed().as_secs_f64());
                }
                Err(e) => reason = e,
            }
        }
        Evaluation::failed(arch, &reason, max_attempts, start.elapsed().as_secs_f64())
    }

    /// One run of the command; Err is the one-line reason it failed.
    fn run_attempt(&self, arch: &str, id: u64, out: &Path) -> Result<f64, String> {
        // A leftover file would be read as this attempt's result.
        let _ = fs::remove_file(out);
        let line = self.expand(arch, out, id);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own group, so a timeout can kill everything the command started.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("could not start sh: {e}"))?;
        let stdout = child.stdout.take().map(Tail::capture);
        let stderr = child.stderr.take().map(Tail::capture);
        let waited = wait_with_timeout(&mut child, self.config.timeout);
        let stdout = stdout.map(Tail::finish).unwrap_or_default();
        let stderr = stderr.map(Tail::finish).unwrap_or_default();
        match waited {
            Waited::TimedOut => Err(format!(
                "timed out after {} s",
                self.config.timeout.as_secs_f64()
            )),
            Waited::Error(e) => Err(format!("waiting for the command failed: {e}")),
            Waited::Exited(status) if !status.success() => {
                Err(status_reason(status, last_line(&stderr)))
            }
            Waited::Exited(_) => read_result(out, &stdout),
        }
    }
}

impl Oracle for CommandOracle {
    fn evaluate(&self, archs: &[String], on_done: &mut dyn FnMut(Evaluation)) {
        let next = AtomicUsize::new(0);
        let (tx, rx) = mpsc::channel::<(usize, Evaluation)>();
        let workers = self.config.workers.min(archs.len());
        thread::scope(|scope| {
            for _ in 0..workers {
                let tx = tx.clone();
                let next = &next;
                scope.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(arch) = archs.get(i) else { break };
                        // A bug in one job must not take the other jobs down with it.
                        let eval = catch_unwind(AssertUnwindSafe(|| self.run_job(arch)))
                            .unwrap_or_else(|_| {
                                Evaluation::failed(arch, "internal error (panic)", 0, 0.0)
                            });
                        // The receiver is gone only if `on_done` panicked: stop taking jobs.
                        if tx.send((i, eval)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            let mut reported = vec![false; archs.len()];
            for (i, eval) in rx {
                reported[i] = true;
                on_done(eval);
            }
            // Every architecture gets exactly one call, even if a worker died.
            for (arch, _) in archs.iter().zip(&reported).filter(|(_, r)| !**r) {
                on_done(Evaluation::failed(
                    arch,
                    "internal error (worker lost)",
                    0,
                    0.0,
                ));
            }
        });
    }

    fn describe(&self) -> String {
        let c = &self.config;
        let timeout = if c.timeout == Duration::MAX {
            "no timeout".to_string()
        } else {
            format!("timeout {} s", c.timeout.as_secs_f64())
        };
        format!(
            "command '{}' ({} worker{}, {timeout}, {} retr{})",
            c.template,
            c.workers,
            if c.workers == 1 { "" } else { "s" },
            c.retries,
            if c.retries == 1 { "y" } else { "ies" },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Template

/// Splits the template into text and placeholders, tracking shell quotes so that a quoted
/// `{arch}` (which would then carry our quotes literally) is rejected and code in quotes
/// (`awk '{print $1}'`) is left alone.
fn parse_template(template: &str) -> Result<Vec<Piece>> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let chars: Vec<char> = template.chars().collect();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut quote = Quote::None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{'
            && let Some(len) = placeholder_len(&chars[i..])
            && (i == 0 || chars[i - 1] != '$')
        {
            let name: String = chars[i + 1..i + len - 1].iter().collect();
            let piece = match name.as_str() {
                "arch" => Some(Piece::Arch),
                "out" => Some(Piece::Out),
                "id" => Some(Piece::Id),
                _ => None,
            };
            match piece {
                Some(Piece::Arch | Piece::Out) if quote != Quote::None => bail!(
                    "in the command template, write {{{name}}} without quotes around it: \
                     it is substituted already shell-quoted"
                ),
                Some(p) => {
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(p);
                    i += len;
                    continue;
                }
                None if quote == Quote::None => bail!(
                    "unknown placeholder {{{name}}} in the command template \
                     (known: {{arch}}, {{out}}, {{id}})"
                ),
                None => {} // e.g. awk or python code inside quotes
            }
        }
        text.push(c);
        match (&quote, c) {
            (Quote::None | Quote::Double, '\\') => {
                // The escaped character is literal; copy it without interpreting it.
                if let Some(&next) = chars.get(i + 1) {
                    text.push(next);
                    i += 1;
                }
            }
            (Quote::None, '\'') => quote = Quote::Single,
            (Quote::None, '"') => quote = Quote::Double,
            (Quote::Single, '\'') | (Quote::Double, '"') => quote = Quote::None,
            _ => {}
        }
        i += 1;
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    if !pieces.contains(&Piece::Arch) {
        bail!("the command template must contain {{arch}} (where the architecture goes)");
    }
    Ok(pieces)
}

/// Length of `{name}` at the start of `chars` when name is an identifier.
fn placeholder_len(chars: &[char]) -> Option<usize> {
    let close = chars.iter().position(|&c| c == '}')?;
    let name = &chars[1..close];
    let ident = name
        .first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_')
        && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == '_');
    ident.then_some(close + 1)
}

/// Single-quotes `s` for sh: everything inside '...' is literal except `'`, written '\''.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Highest job number among files `NNNNNN-aK.out` in the jobs dir (0 when none).
fn last_job_id(jobs_dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(jobs_dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.split_once('-')?.0.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Processes

enum Waited {
    Exited(ExitStatus),
    TimedOut,
    Error(std::io::Error),
}

/// Waits for the command, killing its whole process group on timeout. Also kills the group
/// after a normal exit: stragglers (`sleep 30 &`) would otherwise keep the output pipes open
/// and outlive the job.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Waited {
    let pgid = child.id() as libc::pid_t;
    let start = Instant::now();
    let deadline = start.checked_add(timeout);
    let mut pause = Duration::from_millis(1);
    loop {
        match leader_exited(pgid) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                kill_group(pgid);
                let _ = child.wait();
                return Waited::Error(e);
            }
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            kill_group(pgid);
            let _ = child.wait();
            return Waited::TimedOut;
        }
        let left = deadline.map_or(MAX_POLL, |d| d - now);
        thread::sleep(pause.min(left));
        // Quick jobs are noticed quickly; long ones cost one wakeup per 20 ms.
        pause = (pause * 2).min(MAX_POLL);
    }
    kill_group(pgid);
    match child.wait() {
        Ok(status) => Waited::Exited(status),
        Err(e) => Waited::Error(e),
    }
}

/// Whether the group leader has exited, without reaping it: while it is unreaped its pid (the
/// group id) cannot be reused, so killing the group afterwards cannot hit a stranger.
fn leader_exited(pid: libc::pid_t) -> std::io::Result<bool> {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value; waitid only writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: plain syscall on our own child with a valid out pointer.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            // With WNOHANG and nothing to report the fields stay zero.
            return Ok(info.si_signo != 0);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: sending a signal has no memory-safety preconditions; ESRCH (group gone) is fine.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// The last bytes of a pipe, read on a thread so a chatty child never blocks on a full pipe.
struct Tail {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Tail {
    fn capture(mut pipe: impl Read + Send + 'static) -> Tail {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let shared = Arc::clone(&buf);
        // Detached: if a process escaped the group and holds the pipe, the reader ends when it
        // does, without holding up the job.
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let mut b = shared.lock().unwrap_or_else(|e| e.into_inner());
                b.extend_from_slice(&chunk[..n]);
                if b.len() > 2 * OUTPUT_TAIL_BYTES {
                    let cut = b.len() - OUTPUT_TAIL_BYTES;
                    b.drain(..cut);
                }
            }
            let _ = tx.send(());
        });
        Tail { buf, done }
    }

    fn finish(self) -> String {
        let _ = self.done.recv_timeout(PIPE_GRACE);
        let b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&b).into_owned()
    }
}

fn status_reason(status: ExitStatus, stderr_last: Option<&str>) -> String {
    let what = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => format!("failed ({status})"),
    };
    match stderr_last {
        Some(line) => format!("{what}: {}", one_line(line, 200)),
        None => what,
    }
}

// ---------------------------------------------------------------------------------------------
// Results

/// The accuracy of a successful run: the `{out}` file when it holds one, else the last
/// non-empty line of stdout.
fn read_result(out: &Path, stdout: &str) -> Result<f64, String> {
    let file = fs::read_to_string(out).ok();
    if let Some(acc) = file.as_deref().and_then(parse_text) {
        return Ok(acc);
    }
    if let Some(acc) = last_line(stdout).and_then(parse_accuracy) {
        return Ok(acc);
    }
    // Report what the user most likely meant to be the result.
    let shown = match (file.as_deref().map(str::trim), last_line(stdout)) {
        (Some(f), _) if !f.is_empty() => {
            return Err(format!(
                "could not parse an accuracy from the {{out}} file: '{}'",
                one_line(f, 80)
            ));
        }
        (_, Some(line)) => line,
        (_, None) => {
            return Err(
                "no output: expected an accuracy on the last line of stdout \
                        or in the {out} file"
                    .to_string(),
            );
        }
    };
    Err(format!(
        "could not parse an accuracy from the output: '{}'",
        one_line(shown, 80)
    ))
}

/// A whole file: one value (possibly a multi-line JSON object), or its last line.
fn parse_text(text: &str) -> Option<f64> {
    parse_accuracy(text).or_else(|| last_line(text).and_then(parse_accuracy))
}

/// `93.1`, `accuracy: 93.1`, `accuracy=93.1` or `{"accuracy": 93.1, ...}`; finite only.
fn parse_accuracy(s: &str) -> Option<f64> {
    let s = s.trim();
    let value = if let Ok(v) = s.parse::<f64>() {
        v
    } else if s.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(s).ok()?;
        json.get("accuracy")?.as_f64()?
    } else {
        let key = s.get(..8)?;
        if !key.eq_ignore_ascii_case("accuracy") {
            return None;
        }
        let rest = s[8..].trim_start();
        let rest = rest.strip_prefix(':').or_else(|| rest.strip_prefix('='))?;
        rest.trim().parse::<f64>().ok()?
    };
    value.is_finite().then_some(value)
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// `s` on one line (control characters as spaces), at most `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let mut line: String = s
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max + 1)
        .collect();
    if line.chars().count() > max {
        line = line.chars().take(max).collect::<String>() + "...";
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oracle(
        dir: &Path,
        template: &str,
        workers: usize,
        timeout_ms: u64,
        retries: u32,
    ) -> CommandOracle {
        CommandOracle::new(CommandConfig {
            template: template.to_string(),
            workers,
            timeout: Duration::from_millis(timeout_ms),
            retries,
            work_dir: dir.to_path_buf(),
        })
        .unwrap()
    }

    fn run(o: &dyn Oracle, archs: &[&str]) -> Vec<Evaluation> {
        let archs: Vec<String> = archs.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        o.evaluate(&archs, &mut |e| out.push(e));
        out
    }

    fn run_one(template: &str, timeout_ms: u64, retries: u32) -> Evaluation {
        let dir = tempfile::tempdir().unwrap();
        let o = oracle(dir.path(), template, 1, timeout_ms, retries);
        run(&o, &["a"]).pop().unwrap()
    }

    #[test]
    fn table_hits_and_misses() {
        let t = TableOracle::new([("x".to_string(), 93.5)], "table t".to_string());
        let r = run(&t, &["x", "y"]);
        assert_eq!(r[0], Evaluation::ok("x", 93.5, 1, 0.0));
        assert_eq!(r[1].status, EvalStatus::Failed);
        assert_eq!(r[1].message.as_deref(), Some("not in the table"));
        assert_eq!(t.describe(), "table t");
    }

    #[test]
    fn stdout_number() {
        let e = run_one("echo hello; echo 93.5 # {arch}", 5000, 0);
        assert_eq!(
            (e.status, e.accuracy, e.attempts),
            (EvalStatus::Ok, Some(93.5), 1)
        );
        assert_eq!(e.message, None);
    }

    #[test]
    fn exit_status_with_stderr() {
        let e = run_one("echo nope >&2; echo boom >&2; exit 3 # {arch}", 5000, 1);
        assert_eq!(e.status, EvalStatus::Failed);
        assert_eq!(e.attempts, 2);
        assert_eq!(e.message.as_deref(), Some("exit status 3: boom"));
        let e = run_one("exit 4 # {arch}", 5000, 0);
        assert_eq!(e.message.as_deref(), Some("exit status 4"));
    }

    #[test]
    fn timeout_is_enforced() {
        let t = Instant::now();
        let e = run_one("sleep 5 # {arch}", 200, 0);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(e.message.as_deref(), Some("timed out after 0.2 s"));
        assert!(e.seconds >= 0.2);
    }

    #[test]
    fn garbage_output() {
        let e = run_one("echo 12; echo 'loss went up' # {arch}", 5000, 0);
        assert_eq!(
            e.message.as_deref(),
            Some("could not parse an accuracy from the output: 'loss went up'")
        );
        let e = run_one("echo nan # {arch}", 5000, 0);
        assert_eq!(e.status, EvalStatus::Failed);
        let e = run_one("true {arch}", 5000, 0);
        assert!(e.message.unwrap().starts_with("no output"));
        let long = "x".repeat(200);
        let e = run_one(&format!("echo {long} # {{arch}}"), 5000, 0);
        let msg = e.message.unwrap();
        assert!(msg.ends_with(&format!("'{}...'", "x".repeat(80))), "{msg}");
    }

    #[test]
    fn out_file_wins_over_stdout() {
        let e = run_one("echo 91.25 > {out}; echo 5 # {arch}", 5000, 0);
        assert_eq!(e.accuracy, Some(91.25));
        let e = run_one(
            r#"echo '{"accuracy": 90, "loss": 0.1}' > {out} # {arch}"#,
            5000,
            0,
        );
        assert_eq!(e.accuracy, Some(90.0));
        // A useless file falls back to stdout.
        let e = run_one("echo junk > {out}; echo 88 # {arch}", 5000, 0);
        assert_eq!(e.accuracy, Some(88.0));
        let e = run_one("echo junk > {out} # {arch}", 5000, 0);
        assert_eq!(
            e.message.as_deref(),
            Some("could not parse an accuracy from the {out} file: 'junk'")
        );
    }

    #[test]
    fn accuracy_formats() {
        assert_eq!(parse_accuracy(" 93.1 "), Some(93.1));
        assert_eq!(parse_accuracy("accuracy: 93.1"), Some(93.1));
        assert_eq!(parse_accuracy("Accuracy = 93.1"), Some(93.1));
        assert_eq!(parse_accuracy(r#"{"accuracy": 93.1}"#), Some(93.1));
        assert_eq!(parse_accuracy(r#"{"accuracy": "93.1"}"#), None);
        assert_eq!(parse_accuracy("accuracy 93.1"), None);
        assert_eq!(parse_accuracy("inf"), None);
        assert_eq!(parse_accuracy("NaN"), None);
        assert_eq!(parse_accuracy("é"), None);
        assert_eq!(parse_text("{\n  \"accuracy\": 70.5\n}\n"), Some(70.5));
        let e = run_one("echo 'epoch 1'; echo 'accuracy=93.5' # {arch}", 5000, 0);
        assert_eq!(e.accuracy, Some(93.5));
    }

    #[test]
    fn retry_after_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mark = shell_quote(&dir.path().join("mark").to_string_lossy());
        let template = format!(
            "echo {{out}} >> {mark}.outs; \
             if [ -e {mark} ]; then echo 77; else touch {mark}; echo first >&2; exit 1; fi # {{arch}}"
        );
        let o = oracle(dir.path(), &template, 1, 5000, 2);
        let e = run(&o, &["a"]).pop().unwrap();
        assert_eq!(
            (e.status, e.accuracy, e.attempts),
            (EvalStatus::Ok, Some(77.0), 2)
        );
        let outs = fs::read_to_string(dir.path().join("mark.outs")).unwrap();
        let outs: Vec<&str> = outs.lines().collect();
        assert_eq!(outs.len(), 2);
        assert!(outs[0].ends_with("jobs/000001-a1.out"), "{outs:?}");
        assert!(outs[1].ends_with("jobs/000001-a2.out"), "{outs:?}");
    }

    #[test]
    fn awkward_arch_strings_arrive_intact() {
        let dir = tempfile::tempdir().unwrap();
        let o = oracle(
            dir.path(),
            "printf '%s' {arch} > {out}.arch; echo {id}",
            2,
            5000,
            0,
        );
        let archs = [
            "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1)], normal_concat=range(2, 6))",
            "input|conv3x3-bn-relu|output 0110 $(touch pwned) `id` \"x\" \\n *",
            "it's\nmulti-line {arch} {out} ${HOME}",
        ];
        let evals = run(&o, &archs);
        assert!(
            evals.iter().all(|e| e.status == EvalStatus::Ok),
            "{evals:?}"
        );
        for e in &evals {
            let id = e.accuracy.unwrap() as u64;
            let written = fs::read_to_string(dir.path().join(format!("jobs/{id:06}-a1.out.arch")));
            assert_eq!(written.unwrap(), e.arch);
        }
        assert!(!Path::new("pwned").exists());
    }

    #[test]
    fn workers_run_in_parallel_and_report_in_completion_order() {
        let dir = tempfile::tempdir().unwrap();
        let o = oracle(dir.path(), "sleep 0.3; echo 1 # {arch}", 4, 5000, 0);
        let archs: Vec<String> = (0..8).map(|i| format!("a{i}")).collect();
        let names: Vec<&str> = archs.iter().map(String::as_str).collect();
        let t = Instant::now();
        let evals = run(&o, &names);
        let took = t.elapsed();
        assert!(took < Duration::from_millis(1600), "{took:?}");
        let mut got: Vec<String> = evals.iter().map(|e| e.arch.clone()).collect();
        got.sort();
        assert_eq!(got, archs);

        let o = oracle(dir.path(), "sleep {arch}; echo 1", 2, 5000, 0);
        let evals = run(&o, &["0.5", "0"]);
        assert_eq!(evals[0].arch, "0");
        assert_eq!(evals[1].arch, "0.5");
    }

    /// Whether `pid` is gone (or a zombie awaiting a reaper that may not exist in a container).
    fn dead(pid: i32) -> bool {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        }
    }

    fn wait_dead(pid: i32) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(2) {
            if dead(pid) {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let o = oracle(
            dir.path(),
            "sleep 30 & echo $! > {out}.pid; wait # {arch}",
            1,
            300,
            0,
        );
        let t = Instant::now();
        let e = run(&o, &["a"]).pop().unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(e.status, EvalStatus::Failed);
        let pid: i32 = fs::read_to_string(dir.path().join("jobs/000001-a1.out.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(wait_dead(pid), "sleep {pid} survived the timeout");
    }

    #[test]
    fn stragglers_do_not_hold_up_a_finished_job() {
        let dir = tempfile::tempdir().unwrap();
        let o = oracle(
            dir.path(),
            "sleep 30 & echo $! > {out}.pid; echo 42 # {arch}",
            1,
            10_000,
            0,
        );
        let t = Instant::now();
        let e = run(&o, &["a"]).pop().unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(e.accuracy, Some(42.0));
        let pid: i32 = fs::read_to_string(dir.path().join("jobs/000001-a1.out.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(wait_dead(pid));
    }

    #[test]
    fn chatty_output_does_not_block() {
        let e = run_one("yes | head -c 3000000; echo; echo 42 # {arch}", 10_000, 0);
        assert_eq!(e.accuracy, Some(42.0));
    }

    #[test]
    fn template_validation() {
        let dir = tempfile::tempdir().unwrap();
        let make = |template: &str, workers: usize| {
            CommandOracle::new(CommandConfig {
                template: template.to_string(),
                workers,
                timeout: Duration::from_secs(1),
                retries: 0,
                work_dir: dir.path().to_path_buf(),
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
        };
        assert!(
            make("python train.py", 1)
                .unwrap_err()
                .contains("must contain {arch}")
        );
        assert!(
            make("python train.py {arch} {arc}", 1)
                .unwrap_err()
                .contains("unknown placeholder {arc}")
        );
        assert!(
            make("python train.py '{arch}'", 1)
                .unwrap_err()
                .contains("without quotes")
        );
        assert!(
            make("python train.py \"--arch={arch}\"", 1)
                .unwrap_err()
                .contains("without quotes")
        );
        assert!(
            make("python train.py {arch}", 0)
                .unwrap_err()
                .contains("workers")
        );
        assert_eq!(
            make(
                "python train.py {arch} | awk '{print $1}' ${HOME} {} '{x}' \\{y}",
                1
            ),
            Ok(())
        );
        assert_eq!(
            make("python train.py --arch {arch} --out {out} --seed '{id}'", 1),
            Ok(())
        );
    }

    #[test]
    fn expansion_and_ids() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("jobs")).unwrap();
        fs::write(dir.path().join("jobs/000041-a3.out"), "1").unwrap();
        let o = oracle(dir.path(), "run {arch} {out} {id} ${X}", 1, 1000, 0);
        let line = o.expand("a b'c", Path::new("/w/jobs/x.out"), 7);
        assert_eq!(line, r"run 'a b'\''c' '/w/jobs/x.out' 7 ${X}");
        // A resumed run in the same work dir does not reuse job numbers.
        assert_eq!(o.next_id.load(Ordering::Relaxed), 42);
    }

    #[test]
    fn describe_line() {
        let dir = tempfile::tempdir().unwrap();
        let o = oracle(dir.path(), "python train.py {arch}", 4, 3_600_000, 2);
        assert_eq!(
            o.describe(),
            "command 'python train.py {arch}' (4 workers, timeout 3600 s, 2 retries)"
        );
        let o = oracle(dir.path(), "t {arch}", 1, 500, 1);
        assert_eq!(
            o.describe(),
            "command 't {arch}' (1 worker, timeout 0.5 s, 1 retry)"
        );
    }

    #[test]
    fn empty_batch() {
        let dir = tempfile::tempdir().unwrap();
        let o = oracle(dir.path(), "echo 1 {arch}", 2, 1000, 0);
        assert!(run(&o, &[]).is_empty());
    }
}
