use super::*;

fn id(n: u32) -> String {
    hex(&Md5::digest(n.to_le_bytes()).into())
}

fn stale_of(seen: Seen) -> Vec<String> {
    let mut out: Vec<String> = seen.stale(Vec::new()).map(|s| s.unwrap().id).collect();
    out.sort();
    out
}

#[test]
fn what_the_index_holds_and_the_listing_did_not_produce_is_stale() {
    let base = tempfile::tempdir().unwrap();
    let mut seen = Seen::new(base.path());
    for n in 0..10 {
        seen.listed(&id(n)).unwrap();
    }
    for n in 5..20 {
        seen.indexed(&id(n), NO_PARTITION).unwrap();
    }
    seen.indexed("custom-id", NO_PARTITION).unwrap();
    seen.indexed("D0295955CDB6D488A4A1D3F10DBF141B", NO_PARTITION)
        .unwrap();
    assert_eq!(seen.spilled_bytes(), 0, "small sides stay in memory");
    let mut want: Vec<String> = (10..20).map(id).collect();
    want.push("custom-id".into());
    want.push("D0295955CDB6D488A4A1D3F10DBF141B".into());
    want.sort();
    assert_eq!(stale_of(seen), want);
    assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0);
}

#[test]
fn sides_larger_than_memory_spill_and_join_exactly() {
    let base = tempfile::tempdir().unwrap();
    let mut seen = Seen::new(base.path());
    let (objects, stale) = (300_000u32, 30_000u32);
    for n in 0..objects {
        seen.listed(&id(n)).unwrap();
    }
    // The index holds every listed object but one in a hundred, and `stale` more.
    for n in (0..objects + stale).filter(|n| n % 100 != 1) {
        seen.indexed(&id(n), NO_PARTITION).unwrap();
    }
    seen.indexed("other-id", NO_PARTITION).unwrap();
    assert!(
        seen.spilled_bytes() > SPILL_BYTES as u64,
        "both sides spilled"
    );
    let dirs: Vec<_> = std::fs::read_dir(base.path()).unwrap().collect();
    assert_eq!(dirs.len(), 1, "one spill directory");
    let mut want: Vec<String> = (objects..objects + stale)
        .filter(|n| n % 100 != 1)
        .map(id)
        .collect();
    want.push("other-id".into());
    want.sort();
    assert_eq!(stale_of(seen), want);
    assert_eq!(
        std::fs::read_dir(base.path()).unwrap().count(),
        0,
        "the spill directory is removed when the sync ends"
    );
}

#[test]
fn keys_of_our_ids_are_their_digest_and_others_never_collide_with_them() {
    let ours = id(7);
    let (key, is_ours) = key_of(&ours);
    assert!(is_ours);
    assert_eq!(hex(&key), ours);
    let (upper, is_ours) = key_of(&ours.to_uppercase());
    assert!(!is_ours, "uppercase hex is not one of our ids");
    assert_ne!(upper, key);
    // Every digit value in every position round-trips; any other byte anywhere is not ours.
    let all = "0123456789abcdef0123456789abcdef";
    assert_eq!(hex(&key_of(all).0), all);
    for at in 0..32 {
        for other in ["g", "G", "/", ":", "`", "{", "é"] {
            let id = format!("{}{other}{}", &all[..at], &all[at + 1..]);
            assert!(!key_of(&id).1, "{id:?} is not md5 hex");
        }
    }
    assert!(!key_of(&all[1..]).1, "31 digits are not an md5");
}

#[test]
fn debris_of_interrupted_syncs_is_swept_and_live_directories_are_not() {
    let base = tempfile::tempdir().unwrap();
    let mut live = SpillDir::new(base.path());
    let live_path = live.ensure().unwrap().to_path_buf();
    // A directory whose sync was killed: its lock file is there, nobody holds the lock.
    let dead = base.path().join("sync-dead01");
    std::fs::create_dir(&dead).unwrap();
    std::fs::write(dead.join("lock"), b"").unwrap();
    std::fs::write(dead.join("listed-000"), [0u8; 18]).unwrap();
    let unrelated = base.path().join("keep-me");
    std::fs::create_dir(&unrelated).unwrap();
    dir::sweep(base.path());
    assert!(!dead.exists(), "an unlocked directory is debris");
    assert!(
        live_path.exists(),
        "a locked directory belongs to a running sync"
    );
    assert!(unrelated.exists(), "only our own directories are swept");
    drop(live);
    assert!(!live_path.exists());
}

#[test]
fn documents_of_kept_partitions_are_never_stale_in_memory_or_spilled() {
    for indexed in [100u32, 400_000] {
        let base = tempfile::tempdir().unwrap();
        let mut seen = Seen::new(base.path());
        seen.listed(&id(0)).unwrap();
        // Partitions 0, 1 and 2 by turns; every fifth document names none of the sync's.
        let partition = |n: u32| if n % 5 == 4 { NO_PARTITION } else { n % 3 };
        for n in 0..indexed {
            seen.indexed(&id(n), partition(n)).unwrap();
        }
        seen.indexed("other-id", 1).unwrap();
        assert_eq!(seen.spilled_bytes() > 0, indexed > 100, "{indexed}");
        let mut want: Vec<String> = (1..indexed)
            .filter(|&n| partition(n) != 1)
            .map(id)
            .collect();
        want.sort();
        let mut got: Vec<String> = seen.stale(vec![1]).map(|s| s.unwrap().id).collect();
        got.sort();
        assert_eq!(got.len(), want.len(), "{indexed}");
        assert_eq!(got, want, "{indexed}");
    }
}

#[test]
fn stale_ids_come_shard_by_shard_in_order_each_with_its_shard() {
    let base = tempfile::tempdir().unwrap();
    let mut seen = Seen::new(base.path());
    for n in 0..2_000 {
        seen.indexed(&id(n), NO_PARTITION).unwrap();
    }
    let stale: Vec<StaleId> = seen.stale(Vec::new()).map(Result::unwrap).collect();
    assert_eq!(stale.len(), 2_000);
    // An MD5 id's shard is its first byte, the id's first two hex digits.
    for s in &stale {
        assert_eq!(
            s.shard,
            usize::from_str_radix(&s.id[..2], 16).unwrap(),
            "{s:?}"
        );
    }
    assert!(stale.windows(2).all(|w| w[0].shard <= w[1].shard));
}
