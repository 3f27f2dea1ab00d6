//! The extraction pool against real workers (this crate's binary, `content-sync extract-worker`):
//! files go through one worker after another; a PDF bomb costs its worker, under the memory limit,
//! and the next file gets a new one. No servers needed.

mod common;

use common::hostile;
use content_sync::extract::pool::{Failure, FileLimits, Pool, PoolConfig, WorkerCommand};
use std::time::Duration;

const LIMITS: FileLimits = FileLimits {
    max_chars: 100_000,
    max_decompressed_bytes: 64 << 20,
    max_input_bytes: 10 << 20,
};

fn pool(max_memory_mib: u64) -> Pool {
    Pool::new(PoolConfig {
        size: std::num::NonZeroUsize::MIN,
        max_memory: Some(max_memory_mib << 20),
        timeout: Duration::from_secs(60),
        grace: Duration::from_secs(5),
        command: Some(WorkerCommand {
            program: env!("CARGO_BIN_EXE_content-sync").into(),
            args: vec!["extract-worker".into()],
        }),
    })
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus")
            .join(name),
    )
    .unwrap()
}

#[tokio::test]
async fn one_worker_serves_file_after_file() {
    let pool = pool(256);
    let text = pool.extract("a.txt", b"plain words", LIMITS).await.unwrap();
    assert_eq!(text, "plain words");
    let pdf = pool
        .extract("sample.pdf", &corpus("sample.pdf"), LIMITS)
        .await
        .unwrap();
    assert!(pdf.contains("belongs to"), "{pdf}");
    let err = pool
        .extract("encrypted.pdf", &corpus("encrypted.pdf"), LIMITS)
        .await
        .unwrap_err();
    assert!(matches!(err, Failure::Extract(_)), "{err}");
    let html = pool
        .extract("deep.html", &hostile::deep_html(100_000), LIMITS)
        .await
        .unwrap();
    assert_eq!(html.trim(), "deep");
    let tally = pool.tally();
    assert_eq!((tally.started, tally.died, tally.killed), (1, 0, 0));
}

#[tokio::test]
async fn a_pdf_bomb_costs_its_worker_not_more_than_the_limit() {
    let pool = pool(256);
    let bomb = hostile::pdf_bomb(40);
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let err = pool.extract("bomb.pdf", &bomb, LIMITS).await.unwrap_err();
    let Failure::Died(cause) = &err else {
        panic!("{err}")
    };
    assert!(
        cause.contains("out of memory (address-space limit 256 MiB"),
        "{cause}"
    );
    let tally = pool.tally();
    assert!(
        tally.peak_rss_kib > 0 && tally.peak_rss_kib <= 256 * 1024,
        "{tally:?}"
    );
    // The next file gets a new worker.
    let text = pool
        .extract("after.html", b"<p>still here</p>", LIMITS)
        .await
        .unwrap();
    assert_eq!(text.trim(), "still here");
    assert_eq!((pool.tally().started, pool.tally().died), (2, 1));
}

#[tokio::test]
async fn zip_and_gzip_bombs_stop_at_the_decompression_cap() {
    let pool = pool(256);
    for (key, bytes) in [
        ("bomb.docx", hostile::zip_bomb(100)),
        ("bomb.txt.gz", hostile::gzip_bomb(1024)),
    ] {
        let err = pool.extract(key, &bytes, LIMITS).await.unwrap_err();
        assert!(matches!(err, Failure::Extract(_)), "{key}: {err}");
    }
    assert_eq!(pool.tally().died, 0);
}
