//! Supervised extraction workers: the service's only caller of the parsers.
//!
//! A parser that ignores its limits (lopdf turning a 40 MiB page into gigabytes of objects, a stack
//! that overflows, an endless loop) must not take the service with it. So every file is extracted
//! in a worker process ([`super::worker`]: this binary re-executed), and the worker, not the
//! service, pays for a hostile file:
//!
//! - **memory**: each worker runs under an address-space limit (`RLIMIT_AS`, set between fork and
//!   exec). An allocation past it fails, the worker aborts, and only that file is lost.
//! - **time**: the worker stops at its own deadline (the cooperative [`super::Limits::deadline`]);
//!   one that has not answered `grace` later is killed with `SIGKILL`, for real.
//! - **death**: a worker that dies (out of memory, a crash, a kill) is reaped and replaced by a new
//!   one for the next file; its file's extraction fails with [`Failure::Died`] or
//!   [`Failure::Killed`], which the content stage treats as a property of the file.
//! - **orphans**: workers get `SIGKILL` when the service dies (`PR_SET_PDEATHSIG`), so a worker
//!   stuck in a parser never outlives a service killed with `kill -9`.
//!
//! The pool holds at most `size` workers, started on demand and kept between files; a caller waits
//! for a free one. Files are streamed to a worker piece by piece ([`Extraction::send`]), so the
//! service never needs a whole file in memory. Frames are held back until [`HOLD`] bytes gather
//! (or the file ends), so a small file reaches its worker in one write, with its begin and end
//! frames, and wakes it once: every write to a waiting worker costs both processes a context
//! switch (docs/architecture.md#memory-and-cpu).
//!
//! Plain text is the exception ([`super::read_in_place`]): its extraction is a linear decode of a
//! bounded prefix with no parser behind it, cheaper than the trip to a worker and back, so the pool
//! keeps that prefix (dropping the rest as it arrives) and decodes it on the caller's thread.
//!
//! A file takes a worker only when its first bytes must reach one, so a small file holds none
//! while it downloads (nor does a download that fails before its first bytes), and the idle
//! workers are a stack: the one that answered last serves next, its parsers' code and data the
//! likeliest to be in the caches still.
//!
//! The crate denies `unsafe`; this module is the exception: the limits and the reaping are system
//! calls (`setrlimit`, `prctl`, `kill`, `wait4`) that the standard library does not offer, each in a
//! small block with its reason, in `pool/process.rs` (and `pre_exec` here).
#![allow(unsafe_code)]

use super::ExtractError;
use super::worker::{self, Begin, MAX_DATA_FRAME, ProtocolError};
use std::ffi::OsString;
use std::io::IoSlice;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::{Semaphore, SemaphorePermit};

mod process;
use process::{Death, limit_child, reap};

/// How the pool runs its workers.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Workers at most (files extracted at once).
    pub size: NonZeroUsize,
    /// Address-space limit of each worker, in bytes; `None`: no limit.
    pub max_memory: Option<u64>,
    /// A file's extraction time limit, counted once the worker has the whole file.
    pub timeout: Duration,
    /// How long past `timeout` a silent worker is given before it is killed.
    pub grace: Duration,
    /// `None`: extract in this process, unisolated — only for this crate's unit tests, which have
    /// no worker binary to start.
    pub command: Option<WorkerCommand>,
}

/// The program run as a worker.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl WorkerCommand {
    /// This binary with the worker subcommand. On Linux `/proc/self/exe`, which still names the
    /// running binary after an upgrade has replaced its file.
    pub fn this_binary() -> Self {
        let program = if cfg!(target_os = "linux") {
            PathBuf::from("/proc/self/exe")
        } else {
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from("content-sync"))
        };
        WorkerCommand {
            program,
            args: vec![worker::SUBCOMMAND.into()],
        }
    }
}

/// Bounds of one file.
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    pub max_chars: usize,
    pub max_decompressed_bytes: u64,
    /// A file longer than this is refused as too large.
    pub max_input_bytes: u64,
}

/// Why a file gave no text.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The worker's verdict on the file.
    #[error("{0}")]
    Extract(ExtractError),
    /// The worker did not answer in time and was killed.
    #[error("the extraction worker gave no answer within {0:?} and was killed")]
    Killed(Duration),
    /// The worker died on the file (out of memory, a crash) or broke the protocol.
    #[error("the extraction worker died: {0}")]
    Died(String),
    /// No worker could be started: nothing to do with the file.
    #[error("cannot start an extraction worker: {0}")]
    Spawn(std::io::Error),
}

/// Counts over the pool's life, logged when it stops.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub started: u64,
    pub killed: u64,
    pub died: u64,
    /// Largest peak resident set of a stopped worker, in KiB.
    pub peak_rss_kib: u64,
}

/// The supervised workers of one job.
pub struct Pool {
    config: PoolConfig,
    slots: Semaphore,
    idle: Mutex<Vec<Worker>>,
    tally: Arc<Mutex<Tally>>,
}

/// One worker process and its pipes.
struct Worker {
    child: std::process::Child,
    stdin: ChildStdin,
    /// Buffered: an answer of up to [`ANSWER_BUFFER`] bytes is read in one system call.
    stdout: BufReader<ChildStdout>,
    /// The last bytes the worker wrote to stderr (the reason of an abort).
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: tokio::task::JoinHandle<()>,
}

/// Bytes of a worker's stderr kept.
const STDERR_TAIL: usize = 2048;

/// Frames held back before they are written to a worker (the default capacity of a Linux pipe).
const HOLD: usize = 64 * 1024;

/// Read buffer of a worker's answers.
const ANSWER_BUFFER: usize = 16 * 1024;

/// How long a worker that closed its stdout is given to exit before it is killed.
const EXIT_PATIENCE: Duration = Duration::from_secs(2);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here leaves the guarded state half-updated, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    pub fn new(config: PoolConfig) -> Self {
        Pool {
            slots: Semaphore::new(config.size.get()),
            config,
            idle: Mutex::default(),
            tally: Arc::default(),
        }
    }

    /// The counts so far.
    pub fn tally(&self) -> Tally {
        *lock(&self.tally)
    }

    /// Extracts a file held in memory.
    pub async fn extract(
        &self,
        key: &str,
        bytes: &[u8],
        limits: FileLimits,
    ) -> Result<String, Failure> {
        let mut extraction = self.begin(key, limits);
        extraction.send(bytes).await?;
        extraction.finish().await
    }

    /// Starts a file's extraction; the file follows with [`Extraction::send`]. No worker is taken
    /// yet: the first bytes that must reach one take it, waiting for a free one.
    pub fn begin(&self, key: &str, limits: FileLimits) -> Extraction<'_> {
        let keep = super::read_in_place(key, limits.max_chars);
        if keep.is_some() || self.config.command.is_none() {
            return Extraction {
                pool: self,
                worker: None,
                local: Some(Local {
                    key: key.to_owned(),
                    bytes: Vec::new(),
                    keep,
                    limits,
                }),
                max_answer: 0,
                held: Vec::new(),
                delivered: false,
                reused: false,
                permit: None,
            };
        }
        let begin = Begin {
            key: key.to_owned(),
            max_chars: limits.max_chars as u64,
            max_decompressed_bytes: limits.max_decompressed_bytes,
            timeout_ms: u64::try_from(self.config.timeout.as_millis()).unwrap_or(u64::MAX),
            max_input_bytes: limits.max_input_bytes,
        }
        .encode();
        let mut held = Vec::with_capacity(begin.len() + 16 * 1024);
        held.extend_from_slice(&begin);
        Extraction {
            pool: self,
            worker: None,
            local: None,
            max_answer: limits.max_chars.saturating_mul(4).saturating_add(64 * 1024),
            held,
            delivered: false,
            reused: false,
            permit: None,
        }
    }

    /// A free slot: waits for one.
    async fn slot(&self) -> SemaphorePermit<'_> {
        self.slots
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    fn spawn(&self) -> Result<Worker, Failure> {
        let program = self.config.command.as_ref().expect("a worker command");
        let mut command = std::process::Command::new(&program.program);
        command
            .args(&program.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // glibc's allocator, not the service's jemalloc: the same file needs less address
            // space under it, and the worker runs under `max_memory` (src/allocator.rs).
            .env(crate::allocator::ENV, "system");
        let max_memory = self.config.max_memory;
        let service = std::process::id();
        // SAFETY: the closure runs in the child between fork and exec and only makes
        // async-signal-safe system calls (setrlimit, prctl, getppid).
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(move || limit_child(max_memory, service));
        }
        let mut child = command.spawn().map_err(Failure::Spawn)?;
        let pipes = (|| {
            Ok::<_, std::io::Error>((
                ChildStdin::from_std(child.stdin.take().expect("piped"))?,
                BufReader::with_capacity(
                    ANSWER_BUFFER,
                    ChildStdout::from_std(child.stdout.take().expect("piped"))?,
                ),
                ChildStderr::from_std(child.stderr.take().expect("piped"))?,
            ))
        })();
        let (stdin, stdout, stderr_pipe) = match pipes {
            Ok(pipes) => pipes,
            Err(e) => {
                let _ = child.kill();
                reap(child.id(), Duration::ZERO);
                return Err(Failure::Spawn(e));
            }
        };
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_reader = tokio::spawn(keep_tail(stderr_pipe, stderr.clone()));
        lock(&self.tally).started += 1;
        tracing::debug!(pid = child.id(), "extraction worker started");
        Ok(Worker {
            child,
            stdin,
            stdout,
            stderr,
            stderr_reader,
        })
    }

    /// Ends a worker and reaps it: how it ended, and its peak memory, go into the tally.
    async fn stop(&self, mut worker: Worker, ending: Ending) -> Death {
        if ending == Ending::Kill {
            let _ = worker.child.kill();
        }
        let pid = worker.child.id();
        drop(worker.stdin);
        let reaped = tokio::task::spawn_blocking(move || reap(pid, EXIT_PATIENCE))
            .await
            .unwrap_or_default();
        // The worker is gone, so its stderr ends: wait for the reader to have it all.
        let _ = tokio::time::timeout(Duration::from_secs(1), worker.stderr_reader).await;
        let stderr = String::from_utf8_lossy(&lock(&worker.stderr)).into_owned();
        let mut tally = lock(&self.tally);
        tally.peak_rss_kib = tally.peak_rss_kib.max(reaped.peak_rss_kib);
        match ending {
            Ending::Kill => tally.killed += 1,
            Ending::Gone => tally.died += 1,
        }
        Death {
            pid,
            status: reaped.status,
            peak_rss_kib: reaped.peak_rss_kib,
            stderr,
        }
    }

    /// Kills and reaps a worker without waiting on the runtime (from `drop`).
    fn discard(&self, mut worker: Worker) {
        let _ = worker.child.kill();
        let pid = worker.child.id();
        let tally = self.tally.clone();
        let reap_it = move || {
            let reaped = reap(pid, Duration::ZERO);
            let mut tally = lock(&tally);
            tally.killed += 1;
            tally.peak_rss_kib = tally.peak_rss_kib.max(reaped.peak_rss_kib);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(reap_it)),
            Err(_) => reap_it(),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *lock(&self.idle));
        for mut worker in idle {
            let _ = worker.child.kill();
            let reaped = reap(worker.child.id(), Duration::ZERO);
            let mut tally = lock(&self.tally);
            tally.peak_rss_kib = tally.peak_rss_kib.max(reaped.peak_rss_kib);
        }
        let tally = self.tally();
        if tally.started > 0 {
            tracing::info!(
                started = tally.started,
                killed = tally.killed,
                died = tally.died,
                peak_rss_kib = tally.peak_rss_kib,
                "extraction workers stopped"
            );
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Kill it (it outlived its deadline, or broke the protocol).
    Kill,
    /// It is gone already (its pipes closed).
    Gone,
}

/// A file on its way through one worker. Dropped before [`Extraction::finish`] (a canceled sync),
/// it kills its worker.
pub struct Extraction<'a> {
    pool: &'a Pool,
    worker: Option<Worker>,
    /// The file, when it is extracted in this process.
    local: Option<Local>,
    max_answer: usize,
    /// Frames not written yet (the begin frame first), at most about [`HOLD`] bytes.
    held: Vec<u8>,
    /// Some of this file's frames reached the worker.
    delivered: bool,
    /// The worker served files before this one.
    reused: bool,
    /// The pool's slot, taken with the worker (in this process: for a blocking extraction).
    permit: Option<SemaphorePermit<'a>>,
}

impl Extraction<'_> {
    fn worker(&mut self) -> &mut Worker {
        self.worker
            .as_mut()
            .expect("present until the extraction ends")
    }

    /// Hands the next piece of the file to the worker: held back while the held frames stay
    /// under [`HOLD`] bytes, else written with them.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        if let Some(local) = &mut self.local {
            let room = local
                .keep
                .map_or(bytes.len(), |keep| keep.saturating_sub(local.bytes.len()));
            local
                .bytes
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
            return Ok(());
        }
        for piece in bytes.chunks(MAX_DATA_FRAME) {
            self.held
                .extend_from_slice(&worker::header(piece.len() + 1));
            self.held.push(worker::DATA);
            if self.held.len() + piece.len() <= HOLD {
                self.held.extend_from_slice(piece);
            } else {
                self.deliver(piece).await?;
            }
        }
        Ok(())
    }

    /// Takes a free worker for this file, unless it has one: the most recently idle one, else a
    /// new one.
    async fn take_worker(&mut self) -> Result<(), Failure> {
        if self.worker.is_none() {
            self.permit = Some(self.pool.slot().await);
            let idle = lock(&self.pool.idle).pop();
            (self.worker, self.reused) = match idle {
                Some(worker) => (Some(worker), true),
                None => (Some(self.pool.spawn()?), false),
            };
        }
        Ok(())
    }

    /// Writes the held frames, then `tail`. A worker that takes none of this file's bytes was gone
    /// before the file: a reused one (an idle worker killed from outside) is replaced by a fresh
    /// one, which is not the file's fault; a fresh one that takes nothing could not be started.
    async fn deliver(&mut self, tail: &[u8]) -> Result<(), Failure> {
        self.take_worker().await?;
        loop {
            let worker = self
                .worker
                .as_mut()
                .expect("present until the extraction ends");
            let written = write_all_of(&mut worker.stdin, &self.held, tail).await;
            let (accepted, e) = match written {
                Ok(()) => {
                    self.held.clear();
                    self.delivered = true;
                    return Ok(());
                }
                Err(failed) => failed,
            };
            if self.delivered || accepted > 0 {
                return Err(self.died("closed its input").await);
            }
            let worker = self.worker.take().expect("present");
            let death = self.pool.stop(worker, Ending::Gone).await;
            if !self.reused {
                return Err(Failure::Spawn(std::io::Error::other(format!(
                    "{e}; {}",
                    death.cause(self.pool.config.max_memory)
                ))));
            }
            self.reused = false;
            self.worker = Some(self.pool.spawn()?);
        }
    }

    /// The file is complete: waits for the worker's answer, at most the timeout and its grace.
    pub async fn finish(mut self) -> Result<String, Failure> {
        if let Some(Local {
            key,
            bytes,
            keep,
            limits,
        }) = self.local.take()
        {
            let limits = super::Limits {
                max_chars: limits.max_chars,
                max_decompressed_bytes: limits.max_decompressed_bytes,
                deadline: Instant::now() + self.pool.config.timeout,
            };
            if keep.is_some() {
                return super::extract(&key, &bytes, &limits).map_err(Failure::Extract);
            }
            self.permit = Some(self.pool.slot().await);
            return tokio::task::spawn_blocking(move || super::extract(&key, &bytes, &limits))
                .await
                .map_err(|e| Failure::Died(e.to_string()))?
                .map_err(Failure::Extract);
        }
        self.held.extend_from_slice(&worker::framed(&[worker::END]));
        self.deliver(&[]).await?;
        let patience = self.pool.config.timeout + self.pool.config.grace;
        let max = self.max_answer;
        let answer = tokio::time::timeout(patience, read_answer(&mut self.worker().stdout, max));
        match answer.await {
            Ok(Ok(Some((tag, rest)))) => match worker::decode_answer(tag, rest) {
                Ok(result) => {
                    let worker = self.worker.take().expect("present");
                    lock(&self.pool.idle).push(worker);
                    result.map_err(Failure::Extract)
                }
                Err(e) => Err(self.broke(e).await),
            },
            Ok(Ok(None)) | Ok(Err(ProtocolError::Io(_))) => {
                Err(self.died("closed its output").await)
            }
            Ok(Err(e)) => Err(self.broke(e).await),
            Err(_) => {
                let worker = self.worker.take().expect("present");
                let death = self.pool.stop(worker, Ending::Kill).await;
                tracing::warn!(pid = death.pid, after = ?patience, peak_rss_kib = death.peak_rss_kib,
                    "extraction worker killed: no answer in time");
                Err(Failure::Killed(patience))
            }
        }
    }

    /// The download failed: the worker forgets the file and serves the next one.
    pub async fn abort(mut self) {
        // In this process, or no worker taken yet: nothing to tell anyone.
        if self.worker.is_none() {
            return;
        }
        // A worker that got nothing of the file has nothing to forget.
        if self.delivered {
            let frame = worker::framed(&[worker::ABORT]);
            if self.worker().stdin.write_all(&frame).await.is_err() {
                // `drop` kills what is left of it.
                return;
            }
        }
        let worker = self.worker.take().expect("present");
        lock(&self.pool.idle).push(worker);
    }

    /// The worker's pipes closed under us: it died.
    async fn died(&mut self, what: &str) -> Failure {
        let worker = self.worker.take().expect("present");
        let death = self.pool.stop(worker, Ending::Gone).await;
        let cause = death.cause(self.pool.config.max_memory);
        tracing::warn!(pid = death.pid, cause = %cause, peak_rss_kib = death.peak_rss_kib,
            "extraction worker died ({what})");
        Failure::Died(cause)
    }

    /// The worker answered something unreadable: it is killed.
    async fn broke(&mut self, e: ProtocolError) -> Failure {
        let worker = self.worker.take().expect("present");
        let death = self.pool.stop(worker, Ending::Kill).await;
        tracing::warn!(pid = death.pid, error = %e, "extraction worker broke the protocol; killed");
        Failure::Died(format!("it broke the protocol: {e}"))
    }
}

impl Drop for Extraction<'_> {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.pool.discard(worker);
        }
    }
}

/// A file extracted in this process rather than by a worker.
struct Local {
    key: String,
    /// What the extraction reads: the whole file, or its first `keep` bytes.
    bytes: Vec<u8>,
    /// Plain text: the most bytes kept; decoded on the caller's thread, without a slot. `None`:
    /// the pool has no worker command (this crate's unit tests), and the whole file is extracted
    /// in a blocking thread under a slot.
    keep: Option<usize>,
    limits: FileLimits,
}

/// Writes `head` then `tail` to a worker's input, in as few system calls as the pipe allows; on
/// failure, how many bytes it took first.
async fn write_all_of(
    stdin: &mut ChildStdin,
    head: &[u8],
    tail: &[u8],
) -> Result<(), (usize, std::io::Error)> {
    let mut done = 0;
    while done < head.len() + tail.len() {
        let written = if done < head.len() {
            let bufs = [IoSlice::new(&head[done..]), IoSlice::new(tail)];
            stdin.write_vectored(&bufs).await
        } else {
            stdin.write(&tail[done - head.len()..]).await
        };
        match written {
            Ok(0) => return Err((done, std::io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((done, e)),
        }
    }
    Ok(())
}

/// Reads one answer frame: its tag and the rest of its body, read into a vector of its length
/// without zeroing it first; `None` when the worker's output ended first.
async fn read_answer(
    output: &mut (impl AsyncRead + Unpin),
    max: usize,
) -> Result<Option<(u8, Vec<u8>)>, ProtocolError> {
    let mut prefix = [0u8; 4];
    match output.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = worker::announced(prefix, max)?;
    let tag = output.read_u8().await?;
    let mut rest = Vec::with_capacity(len - 1);
    output.take(len as u64 - 1).read_to_end(&mut rest).await?;
    if rest.len() < len - 1 {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(Some((tag, rest)))
}

/// Keeps the last [`STDERR_TAIL`] bytes of a worker's stderr.
async fn keep_tail(mut stderr: ChildStderr, tail: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = stderr.read(&mut buf).await {
        let mut tail = lock(&tail);
        tail.extend_from_slice(&buf[..n]);
        let excess = tail.len().saturating_sub(STDERR_TAIL);
        tail.drain(..excess);
    }
}

#[cfg(test)]
mod tests;
