//! The supervisor against stand-in workers written in `sh` (the real worker is this crate's binary,
//! which unit tests do not have; `tests/extract_isolation.rs` runs it).

use super::*;
use std::path::Path;

const LIMITS: FileLimits = FileLimits {
    max_chars: 100,
    max_decompressed_bytes: 1 << 20,
    max_input_bytes: 1 << 20,
};

/// A pool of one worker running `script` under `sh`, with a 256 MiB address-space limit.
fn pool(script: &str, timeout: Duration) -> Pool {
    Pool::new(PoolConfig {
        size: std::num::NonZeroUsize::MIN,
        max_memory: Some(256 << 20),
        timeout,
        grace: Duration::from_millis(100),
        command: Some(WorkerCommand {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
        }),
    })
}

/// The pids the stand-in workers wrote to `file`.
fn pids(file: &Path) -> Vec<u32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn a_worker_that_outlives_its_deadline_is_killed_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pids");
    // Takes the file and never answers.
    let pool = pool(
        &format!("echo $$ >> {}; exec sleep 30", file.display()),
        Duration::from_millis(100),
    );
    for key in ["a.rtf", "b.rtf"] {
        let err = pool.extract(key, b"words", LIMITS).await.unwrap_err();
        assert!(matches!(err, Failure::Killed(_)), "{err}");
    }
    let pids = pids(&file);
    assert_eq!(pids.len(), 2, "a new worker for the second file: {pids:?}");
    assert_ne!(pids[0], pids[1]);
    for pid in pids {
        assert!(!exists(pid), "worker {pid} is still there");
    }
    let tally = pool.tally();
    assert_eq!((tally.started, tally.killed, tally.died), (2, 2, 0));
}

#[tokio::test]
async fn a_worker_that_dies_is_replaced_and_its_death_explained() {
    // Reads a little of the file, complains the way Rust's allocator does, and aborts.
    let pool = pool(
        "head -c 1 > /dev/null; echo 'memory allocation of 1073741824 bytes failed' >&2; kill -s ABRT $$",
        Duration::from_secs(30),
    );
    for key in ["a.pdf", "b.pdf"] {
        let err = pool.extract(key, b"%PDF-1.4", LIMITS).await.unwrap_err();
        let Failure::Died(cause) = &err else {
            panic!("{err}")
        };
        assert!(
            cause.contains("out of memory (address-space limit 256 MiB")
                && cause.contains("SIGABRT"),
            "{cause}"
        );
    }
    let tally = pool.tally();
    assert_eq!((tally.started, tally.died), (2, 2));
}

#[tokio::test]
async fn an_answer_is_read_and_the_worker_kept_for_the_next_file() {
    // Answers "hi" to the first file, then never again.
    let pool = pool(
        r"printf '\003\000\000\000Thi'; exec sleep 30",
        Duration::from_millis(100),
    );
    assert_eq!(pool.extract("a.rtf", b"words", LIMITS).await.unwrap(), "hi");
    let err = pool.extract("b.rtf", b"words", LIMITS).await.unwrap_err();
    assert!(matches!(err, Failure::Killed(_)), "{err}");
    assert_eq!(
        pool.tally().started,
        1,
        "the second file went to the same worker"
    );
}

#[tokio::test]
async fn a_worker_that_answers_nonsense_is_killed() {
    let pool = pool(
        r"printf '\002\000\000\000Z!'; exec sleep 30",
        Duration::from_secs(30),
    );
    let err = pool.extract("a.rtf", b"words", LIMITS).await.unwrap_err();
    let Failure::Died(cause) = &err else {
        panic!("{err}")
    };
    assert!(cause.contains("protocol"), "{cause}");
    assert_eq!(pool.tally().killed, 1);
}

#[tokio::test]
async fn a_file_given_up_half_way_kills_its_worker() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pids");
    // Reads the file (waiting for more than it gets), then never answers.
    let pool = pool(
        &format!(
            "echo $$ >> {}; head -c 100000 > /dev/null; exec sleep 30",
            file.display()
        ),
        Duration::from_secs(30),
    );
    let mut extraction = pool.begin("a.rtf", LIMITS);
    // More than the pool holds back: the worker has some of the file.
    extraction.send(&[b'x'; HOLD + 1]).await.unwrap();
    let pid = loop {
        if let Some(pid) = pids(&file).first() {
            break *pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    drop(extraction);
    for _ in 0..500 {
        if !exists(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("worker {pid} survived its dropped extraction");
}

#[tokio::test]
async fn a_worker_that_cannot_start_is_not_the_files_fault() {
    let pool = Pool::new(PoolConfig {
        size: std::num::NonZeroUsize::MIN,
        max_memory: None,
        timeout: Duration::from_secs(1),
        grace: Duration::from_secs(1),
        command: Some(WorkerCommand {
            program: "/nonexistent/content-sync".into(),
            args: vec![],
        }),
    });
    let err = pool.extract("a.rtf", b"words", LIMITS).await.unwrap_err();
    assert!(matches!(err, Failure::Spawn(_)), "{err}");
}

#[test]
fn a_death_is_told_in_words() {
    let death = |status, stderr: &str| Death {
        pid: 1,
        status,
        peak_rss_kib: 0,
        stderr: stderr.into(),
    };
    let overflow = death(
        Some(libc::SIGSEGV),
        "\nthread 'main' has overflowed its stack\nfatal runtime error: stack overflow\n",
    );
    assert_eq!(
        overflow.cause(None),
        "stack overflow (killed by signal 11 (SIGSEGV))"
    );
    let exited = death(Some(3 << 8), "extract-worker: an unexpected frame '?'\n");
    assert_eq!(
        exited.cause(Some(512 << 20)),
        "exited with status 3: extract-worker: an unexpected frame '?'"
    );
    let killed = death(Some(libc::SIGKILL), "");
    assert_eq!(killed.cause(None), "killed by signal 9 (SIGKILL)");
}

#[tokio::test]
async fn a_small_file_reaches_its_worker_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reads");
    // For every file: counts what one read of its input brings, then answers "hi".
    let pool = pool(
        &format!(
            r"while :; do dd bs=65536 count=1 2>/dev/null | wc -c >> {}; printf '\003\000\000\000Thi'; done",
            file.display()
        ),
        Duration::from_secs(30),
    );
    // The first file starts the worker; for the second it is up and waiting for its input.
    assert_eq!(pool.extract("warm-up", b"", LIMITS).await.unwrap(), "hi");
    let mut extraction = pool.begin("a.rtf", LIMITS);
    extraction.send(b"words").await.unwrap();
    assert_eq!(extraction.finish().await.unwrap(), "hi");
    // Begin (4 + 1 + 32 + 5 bytes of key), data (4 + 1 + 5) and end (4 + 1) frames.
    let reads = std::fs::read_to_string(&file).unwrap();
    assert_eq!(reads.lines().nth(1), Some("57"), "{reads}");
}

#[tokio::test]
async fn an_idle_worker_killed_from_outside_is_replaced_for_the_next_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pids");
    // Answers "hi" at once, then waits.
    let pool = pool(
        &format!(
            r"echo $$ >> {}; printf '\003\000\000\000Thi'; exec sleep 30",
            file.display()
        ),
        Duration::from_secs(30),
    );
    assert_eq!(pool.extract("a.rtf", b"words", LIMITS).await.unwrap(), "hi");
    let first = pids(&file)[0];
    // SAFETY: plain system call on our own child.
    unsafe { libc::kill(first as libc::pid_t, libc::SIGKILL) };
    while std::fs::read_to_string(format!("/proc/{first}/stat")).is_ok_and(|s| !s.contains(") Z "))
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pool.extract("b.rtf", b"words", LIMITS).await.unwrap(), "hi");
    let tally = pool.tally();
    assert_eq!((tally.started, tally.died), (2, 1), "{tally:?}");
}

#[tokio::test]
async fn a_small_file_takes_no_worker_while_it_downloads() {
    // One worker, which answers "hi" to every file.
    let pool = pool(
        r"while :; do dd bs=65536 count=1 of=/dev/null 2>/dev/null; printf '\003\000\000\000Thi'; done",
        Duration::from_secs(30),
    );
    // Two files downloading at once, each a piece so far: neither holds the only worker yet, so
    // both get their pieces in.
    let mut a = pool.begin("a.rtf", LIMITS);
    let mut b = pool.begin("b.rtf", LIMITS);
    for extraction in [&mut a, &mut b] {
        let sent = tokio::time::timeout(Duration::from_secs(5), extraction.send(b"words"));
        sent.await.expect("a piece waits for no worker").unwrap();
    }
    assert_eq!(a.finish().await.unwrap(), "hi");
    assert_eq!(b.finish().await.unwrap(), "hi");
    assert_eq!(
        pool.tally().started,
        1,
        "both files went to the same worker"
    );
}

#[tokio::test]
async fn plain_text_is_decoded_in_place_from_a_bounded_prefix() {
    // A worker would fail every file: none may be started.
    let pool = pool("exit 1", Duration::from_secs(30));
    let limits = FileLimits {
        max_chars: 10_000,
        ..LIMITS
    };
    let mut extraction = pool.begin("notes.md", limits);
    for _ in 0..16 {
        extraction
            .send(&b"plain words ".repeat(5462))
            .await
            .unwrap();
    }
    let kept = extraction.local.as_ref().map(|local| local.bytes.len());
    assert_eq!(kept, super::super::read_in_place("notes.md", 10_000));
    let text = extraction.finish().await.unwrap();
    assert!(text.starts_with("plain words plain"), "{text:.40}");
    assert_eq!(text.chars().count(), 10_000);
    // What the decode refuses is refused the same way.
    let err = pool
        .extract("blob.txt", b"abc\0def", limits)
        .await
        .unwrap_err();
    assert!(matches!(err, Failure::Extract(_)), "{err}");
    assert_eq!(pool.tally().started, 0);
}
