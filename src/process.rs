//! Running a short-lived child process (hooks, credential helpers) with a deadline. The caller
//! builds the [`Command`] (program, arguments, environment); this module owns stdin, stdout,
//! stderr and the process group.
//!
//! The child runs in a process group of its own. When its main process exits, or when the
//! deadline passes, the whole group is killed, so a background job it started cannot keep
//! pullpilot waiting. Output still held by a process that left the group (`setsid`) is read for
//! at most [`PIPE_GRACE`] more, then abandoned. No call here waits without a bound.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long to keep reading output after the process group was killed.
pub(crate) const PIPE_GRACE: Duration = Duration::from_secs(1);

/// `PATH` for the `kill` this module runs (and for hooks when pullpilot has none).
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A line longer than this is handed over in pieces.
const MAX_CHUNK: usize = 64 * 1024;

/// How often the child is polled while no output arrives.
const POLL: Duration = Duration::from_millis(10);

/// Which output stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// How to run a child.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunLimits {
    /// After this long the process group is killed and the run is [`RunError::TimedOut`].
    pub(crate) timeout: Duration,
    /// Bytes of each stream passed on; the rest is read and dropped, so the child never blocks
    /// on a full pipe.
    pub(crate) max_output: usize,
}

/// A child that ran to its end.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    /// A process that left the group still held an output pipe after [`PIPE_GRACE`].
    pub(crate) output_abandoned: bool,
}

/// Why a child did not run to its end.
#[derive(Debug)]
pub(crate) enum RunError {
    /// It could not be started (missing program, not executable, …).
    Start(io::Error),
    /// It was still running at the deadline; its process group was killed.
    TimedOut { output_abandoned: bool },
    /// Waiting for it failed; its process group was killed.
    Wait(io::Error),
}

enum Event {
    Output(Stream, Vec<u8>),
    Closed,
}

/// Runs `cmd` with `input` on stdin (or `/dev/null`), in a process group of its own, and hands
/// its output to `on_output` as it arrives, one line at a time (with its `\n`, if it had one).
/// Returns when the main process has exited and its output was read, or [`PIPE_GRACE`] after
/// that; or, at the deadline, after killing the group.
pub(crate) fn run(
    cmd: &mut Command,
    input: Option<&[u8]>,
    limits: RunLimits,
    mut on_output: impl FnMut(Stream, &[u8]),
) -> Result<Finished, RunError> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = spawn(cmd).map_err(RunError::Start)?;
    let started = Instant::now();
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        // Detached: a child that never reads its stdin must not block this thread. A child that
        // exits without reading it is fine: its exit status tells.
        let input = input.to_vec();
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let (events, received) = mpsc::channel();
    let mut pumps = 0;
    if let Some(out) = child.stdout.take() {
        pump(out, Stream::Stdout, limits.max_output, events.clone());
        pumps += 1;
    }
    if let Some(err) = child.stderr.take() {
        pump(err, Stream::Stderr, limits.max_output, events.clone());
        pumps += 1;
    }
    drop(events);

    let group = child.id();
    let mut open = pumps;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() >= limits.timeout => {
                break Err(stop(&mut child, group, None));
            }
            Ok(None) => {}
            Err(e) => break Err(stop(&mut child, group, Some(e))),
        }
        let wait = POLL.min(limits.timeout.saturating_sub(started.elapsed()));
        match received.recv_timeout(wait) {
            Ok(Event::Output(stream, chunk)) => on_output(stream, &chunk),
            Ok(Event::Closed) => open -= 1,
            Err(RecvTimeoutError::Timeout) => {}
            // Both pipes closed: only the exit is left to wait for.
            Err(RecvTimeoutError::Disconnected) => thread::sleep(wait),
        }
    };
    // Background jobs it left behind would keep its output pipes open (and this run waiting).
    kill_group(group);
    let grace = Instant::now() + PIPE_GRACE;
    let mut output_abandoned = false;
    while open > 0 {
        match received.recv_timeout(grace.saturating_duration_since(Instant::now())) {
            Ok(Event::Output(stream, chunk)) => on_output(stream, &chunk),
            Ok(Event::Closed) => open -= 1,
            Err(RecvTimeoutError::Timeout) => {
                output_abandoned = true;
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    match status {
        Ok(status) => Ok(Finished {
            status,
            output_abandoned,
        }),
        Err(None) => Err(RunError::TimedOut { output_abandoned }),
        Err(Some(e)) => Err(RunError::Wait(e)),
    }
}

/// Spawns `cmd`, retrying briefly on ETXTBSY (an executable that was just written while another
/// thread's fork still holds it open).
fn spawn(cmd: &mut Command) -> io::Result<Child> {
    const ETXTBSY: i32 = 26;
    let mut attempts = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempts < 10 => {
                attempts += 1;
                thread::sleep(Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

/// Kills the group and reaps the main process; gives back why it stopped (`None`: timeout).
fn stop(child: &mut Child, group: u32, why: Option<io::Error>) -> Option<io::Error> {
    kill_group(group);
    let _ = child.wait();
    why
}

/// Reads `stream` on a detached thread (a pipe held by a process that left the group must not
/// hold the caller) and sends its lines, at most `max_output` bytes of them, then `Closed`.
fn pump(
    mut stream: impl Read + Send + 'static,
    which: Stream,
    max_output: usize,
    events: mpsc::Sender<Event>,
) {
    thread::spawn(move || {
        let mut budget = max_output;
        let mut line = Vec::new();
        let mut buf = [0u8; 8192];
        let send = |line: &mut Vec<u8>, budget: &mut usize| {
            let keep = line.len().min(*budget);
            if keep > 0 {
                *budget -= keep;
                line.truncate(keep);
                let _ = events.send(Event::Output(which, std::mem::take(line)));
            }
            line.clear();
        };
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            for &b in &buf[..n] {
                line.push(b);
                if b == b'\n' || line.len() >= MAX_CHUNK {
                    send(&mut line, &mut budget);
                }
            }
        }
        send(&mut line, &mut budget);
        let _ = events.send(Event::Closed);
    });
}

/// SIGKILL to every process left in the group (none left is fine). Through `kill(1)`, as
/// pullpilot has no unsafe code to call `kill(2)` itself.
fn kill_group(group: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .env_clear()
        .env("PATH", DEFAULT_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(timeout_ms: u64) -> RunLimits {
        RunLimits {
            timeout: Duration::from_millis(timeout_ms),
            max_output: 1 << 20,
        }
    }

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    /// Runs `script` and collects its output per stream.
    fn collect(
        script: &str,
        input: Option<&[u8]>,
        limits: RunLimits,
    ) -> (Result<Finished, RunError>, Vec<u8>, Vec<u8>) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let result = run(
            &mut sh(script),
            input,
            limits,
            |stream, chunk| match stream {
                Stream::Stdout => out.extend_from_slice(chunk),
                Stream::Stderr => err.extend_from_slice(chunk),
            },
        );
        (result, out, err)
    }

    #[test]
    fn output_input_and_exit_status() {
        let (result, out, err) = collect(
            "read -r x; echo \"got $x\"; echo oops >&2; printf tail; exit 4",
            Some(b"hello\n"),
            limits(5000),
        );
        let finished = result.unwrap();
        assert_eq!(finished.status.code(), Some(4));
        assert!(!finished.output_abandoned);
        assert_eq!(out, b"got hello\ntail");
        assert_eq!(err, b"oops\n");
    }

    #[test]
    fn lines_arrive_one_at_a_time_and_output_is_capped() {
        let mut lines = Vec::new();
        run(
            &mut sh("echo a; echo b; head -c 100000 /dev/zero"),
            None,
            RunLimits {
                timeout: Duration::from_secs(5),
                max_output: 1000,
            },
            |_, chunk| lines.push(chunk.to_vec()),
        )
        .unwrap();
        assert_eq!(lines[..2], [b"a\n".to_vec(), b"b\n".to_vec()]);
        assert_eq!(lines.iter().map(Vec::len).sum::<usize>(), 1000);
    }

    #[test]
    fn a_missing_program_is_a_start_error() {
        let result = run(
            &mut Command::new("/nonexistent/pullpilot-helper"),
            None,
            limits(1000),
            |_, _| {},
        );
        assert!(matches!(result, Err(RunError::Start(_))), "{result:?}");
    }

    #[test]
    fn a_child_that_hangs_is_killed_with_its_group_at_the_deadline() {
        let started = Instant::now();
        let (result, _, _) = collect("sleep 30 & sleep 30", None, limits(300));
        assert!(
            matches!(
                result,
                Err(RunError::TimedOut {
                    output_abandoned: false
                })
            ),
            "{result:?}"
        );
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    }

    #[test]
    fn a_pipe_held_outside_the_group_is_abandoned_after_the_grace() {
        let tmp = tempfile::Builder::new()
            .prefix("pp-process-setsid-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let pid_file = dir.join("pid");
        let started = Instant::now();
        let (result, out, _) = collect(
            &format!(
                "setsid sh -c 'echo $$ > {}; exec sleep 15' & sleep 0.3; echo started",
                pid_file.display()
            ),
            None,
            limits(10_000),
        );
        let elapsed = started.elapsed();
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
        let finished = result.unwrap();
        assert!(finished.status.success());
        assert!(finished.output_abandoned);
        assert_eq!(out, b"started\n");
        assert!(
            elapsed < Duration::from_millis(300) + PIPE_GRACE + Duration::from_secs(1),
            "{elapsed:?}"
        );
    }
}
