//! The system calls of the pool: a worker's limits (set between fork and exec), reaping an ended
//! worker with its peak memory, and saying in words how it ended. Each `unsafe` block is a plain
//! system call with its reason.

#![allow(unsafe_code)]

use std::time::{Duration, Instant};

/// Applies the worker's limits; runs in the child between fork and exec. `service` is the pid of
/// the process that forked it.
pub(super) fn limit_child(max_memory: Option<u64>, service: u32) -> std::io::Result<()> {
    if let Some(bytes) = max_memory {
        let limit = libc::rlimit {
            rlim_cur: bytes as libc::rlim_t,
            rlim_max: bytes as libc::rlim_t,
        };
        // SAFETY: plain system call on a valid struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // The signal comes when the thread that forked ends; the pool forks from the runtime's
    // threads, which live as long as the service.
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The service died between fork and prctl: nobody would read this worker. Compared with
        // the service's own pid, not 1: in a container the service is pid 1 itself, and an orphan
        // may go to a subreaper rather than to init.
        if libc::getppid() as u32 != service {
            libc::_exit(1);
        }
    }
    Ok(())
}

/// What `wait4` says of an ended worker.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Reaped {
    /// The raw wait status; `None` when the worker could not be reaped.
    pub(super) status: Option<i32>,
    pub(super) peak_rss_kib: u64,
}

/// Waits for `pid` to end, `patience` at most before killing it, and collects its status and peak
/// memory (`ru_maxrss`, KiB on Linux).
pub(super) fn reap(pid: u32, patience: Duration) -> Reaped {
    let pid = pid as libc::pid_t;
    let started = Instant::now();
    loop {
        let waiting = started.elapsed() < patience;
        if !waiting {
            // SAFETY: plain system call; the pid is our unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let mut status = 0;
        // SAFETY: zeroed rusage is a valid out-parameter.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if waiting { libc::WNOHANG } else { 0 };
        // SAFETY: valid pointers to locals.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == pid {
            return Reaped {
                status: Some(status),
                peak_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
            };
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Reaped::default();
        }
        if r == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A reaped worker.
pub(super) struct Death {
    pub(super) pid: u32,
    pub(super) status: Option<i32>,
    pub(super) peak_rss_kib: u64,
    pub(super) stderr: String,
}

impl Death {
    /// Why the worker ended, in words.
    pub(super) fn cause(&self, max_memory: Option<u64>) -> String {
        let last = self
            .stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        let mut cause = match self.status {
            None => "its end could not be observed".to_string(),
            Some(s) if libc::WIFEXITED(s) => format!("exited with status {}", libc::WEXITSTATUS(s)),
            Some(s) if libc::WIFSIGNALED(s) => {
                let signal = libc::WTERMSIG(s);
                format!("killed by signal {signal} ({})", signal_name(signal))
            }
            Some(s) => format!("ended with wait status {s}"),
        };
        if self.stderr.contains("memory allocation of") {
            cause = match max_memory {
                Some(bytes) => format!(
                    "out of memory (address-space limit {} MiB; {cause})",
                    bytes >> 20
                ),
                None => format!("out of memory ({cause})"),
            };
        } else if self.stderr.contains("overflowed its stack") {
            cause = format!("stack overflow ({cause})");
        } else if !last.is_empty() {
            let last: String = last.chars().take(300).collect();
            cause = format!("{cause}: {last}");
        }
        cause
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGTERM => "SIGTERM",
        _ => "other",
    }
}
