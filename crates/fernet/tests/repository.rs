//! The on-disk key repository.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ferrostack_fernet::{
    KeyRepository, KeyRepositoryError, Rotation, Scope, TokenError, TokenFormatter, TokenPayload,
    default_auth_methods, generate_key, random_audit_id,
};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ferrostack-fernet-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
        Self(path)
    }

    fn keys(&self) -> PathBuf {
        self.0.join("keys")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn indices(dir: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.parse().ok())
        .collect();
    v.sort();
    v
}

fn read(dir: &Path, index: u64) -> String {
    fs::read_to_string(dir.join(index.to_string())).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn formatter(dir: &Path) -> TokenFormatter {
    TokenFormatter::new(&KeyRepository::load(dir).unwrap(), default_auth_methods()).unwrap()
}

fn payload() -> TokenPayload {
    TokenPayload {
        user_id: "0123456789abcdef0123456789abcdef".into(),
        methods: vec!["password".into()],
        scope: Scope::Project("fedcba9876543210fedcba9876543210".into()),
        expires_at: 2_000_000_000.0,
        audit_ids: vec![random_audit_id()],
    }
}

#[test]
fn setup_creates_staged_and_primary_keys_with_tight_permissions() {
    let tmp = TempDir::new();
    let dir = tmp.keys().join("nested");
    assert!(KeyRepository::setup(&dir).unwrap());
    assert_eq!(indices(&dir), [0, 1]);
    assert_eq!(mode(&dir), 0o700);
    for i in [0, 1] {
        assert_eq!(mode(&dir.join(i.to_string())), 0o600);
        let key = read(&dir, i);
        assert_eq!(key.len(), 44, "no newline, 32 bytes in padded base64");
    }
    assert!(!dir.join("0.tmp").exists());
    // Primary (highest index) first, staged key 0 last.
    assert_eq!(
        KeyRepository::load(&dir).unwrap(),
        [read(&dir, 1), read(&dir, 0)]
    );
}

#[test]
fn setup_is_idempotent() {
    let tmp = TempDir::new();
    let dir = tmp.keys();
    assert!(KeyRepository::setup(&dir).unwrap());
    let before = KeyRepository::load(&dir).unwrap();
    assert!(!KeyRepository::setup(&dir).unwrap());
    assert!(!KeyRepository::setup(&dir).unwrap());
    assert_eq!(KeyRepository::load(&dir).unwrap(), before);
    assert_eq!(indices(&dir), [0, 1]);
}

#[test]
fn setup_never_overwrites_or_purges_existing_keys() {
    let tmp = TempDir::new();
    let dir = tmp.keys();
    fs::create_dir(&dir).unwrap();
    let (k3, k7) = (generate_key().unwrap(), generate_key().unwrap());
    fs::write(dir.join("3"), &k3).unwrap();
    fs::write(dir.join("7"), &k7).unwrap();
    assert!(KeyRepository::setup(&dir).unwrap());
    assert_eq!(indices(&dir), [0, 3, 7, 8]);
    assert_eq!(read(&dir, 3), k3);
    assert_eq!(read(&dir, 7), k7);
}

#[test]
fn rotate_promotes_staged_key_and_purges_to_max_active_keys() {
    let tmp = TempDir::new();
    let dir = tmp.keys();
    KeyRepository::setup(&dir).unwrap();

    let staged = read(&dir, 0);
    let r = KeyRepository::rotate(&dir, 3).unwrap();
    assert_eq!(
        r,
        Rotation {
            primary: 2,
            purged: vec![]
        }
    );
    assert_eq!(indices(&dir), [0, 1, 2]);
    assert_eq!(read(&dir, 2), staged, "the staged key becomes the primary");
    assert_ne!(read(&dir, 0), staged, "a new staged key");
    assert_eq!(mode(&dir.join("0")), 0o600);

    let r = KeyRepository::rotate(&dir, 3).unwrap();
    assert_eq!(
        r,
        Rotation {
            primary: 3,
            purged: vec![1]
        }
    );
    assert_eq!(indices(&dir), [0, 2, 3]);

    let r = KeyRepository::rotate(&dir, 3).unwrap();
    assert_eq!(
        r,
        Rotation {
            primary: 4,
            purged: vec![2]
        }
    );
    assert_eq!(indices(&dir), [0, 3, 4]);

    // Growing the window purges nothing; shrinking it purges the oldest.
    assert_eq!(
        KeyRepository::rotate(&dir, 5).unwrap().purged,
        Vec::<u64>::new()
    );
    assert_eq!(
        KeyRepository::rotate(&dir, 5).unwrap().purged,
        Vec::<u64>::new()
    );
    assert_eq!(indices(&dir), [0, 3, 4, 5, 6]);
    let r = KeyRepository::rotate(&dir, 2).unwrap();
    assert_eq!(
        r,
        Rotation {
            primary: 7,
            purged: vec![3, 4, 5, 6]
        }
    );
    assert_eq!(indices(&dir), [0, 7]);

    // As Keystone: max_active_keys = 1 keeps only the staged key.
    let r = KeyRepository::rotate(&dir, 1).unwrap();
    assert_eq!(
        r,
        Rotation {
            primary: 8,
            purged: vec![7, 8]
        }
    );
    assert_eq!(indices(&dir), [0]);
    assert_eq!(KeyRepository::load(&dir).unwrap().len(), 1);

    assert!(matches!(
        KeyRepository::rotate(&dir, 0),
        Err(KeyRepositoryError::InvalidMaxActiveKeys)
    ));
}

#[test]
fn rotate_requires_a_staged_key() {
    let tmp = TempDir::new();
    let dir = tmp.keys();
    fs::create_dir(&dir).unwrap();
    assert!(matches!(
        KeyRepository::rotate(&dir, 3),
        Err(KeyRepositoryError::NotInitialized { .. })
    ));
    fs::write(dir.join("1"), generate_key().unwrap()).unwrap();
    assert!(matches!(
        KeyRepository::rotate(&dir, 3),
        Err(KeyRepositoryError::NotInitialized { .. })
    ));
    assert!(!dir.join("0.tmp").exists());
}

#[test]
fn tokens_survive_rotation_while_their_key_is_active() {
    let tmp = TempDir::new();
    let dir = tmp.keys();
    KeyRepository::setup(&dir).unwrap();
    let p = payload();
    let token = formatter(&dir).encode(&p).unwrap(); // made with key 1

    KeyRepository::rotate(&dir, 3).unwrap(); // keys 0, 1, 2
    assert_eq!(formatter(&dir).decode(&token).unwrap().payload, p);
    let newer = formatter(&dir).encode(&p).unwrap(); // made with key 2

    KeyRepository::rotate(&dir, 3).unwrap(); // keys 0, 2, 3: key 1 purged
    let f = formatter(&dir);
    assert!(matches!(f.decode(&token), Err(TokenError::Invalid(_))));
    assert_eq!(f.decode(&newer).unwrap().payload, p);
}

#[test]
fn staged_key_lets_unrotated_nodes_accept_tokens_from_rotated_ones() {
    let tmp = TempDir::new();
    let a = tmp.0.join("a");
    let b = tmp.0.join("b");
    KeyRepository::setup(&a).unwrap();
    fs::create_dir(&b).unwrap();
    for i in indices(&a) {
        fs::copy(a.join(i.to_string()), b.join(i.to_string())).unwrap();
    }
    KeyRepository::rotate(&a, 3).unwrap();
    let token = formatter(&a).encode(&payload()).unwrap();
    // Node b has not rotated yet; the new primary is its staged key 0.
    assert!(formatter(&b).decode(&token).is_ok());
}

#[test]
fn malformed_keys_are_rejected_by_path_without_their_content() {
    let tmp = TempDir::new();
    let dir = tmp.keys();
    KeyRepository::setup(&dir).unwrap();
    let secret = "YS0zMS1ieXRlLXNlY3JldC1ub3QtZmVybmV0LWtleQ==";
    fs::write(dir.join("5"), secret).unwrap();
    let err = KeyRepository::load(&dir).unwrap_err();
    match &err {
        KeyRepositoryError::MalformedKey { path } => assert_eq!(path, &dir.join("5")),
        other => panic!("{other:?}"),
    }
    assert!(!err.to_string().contains(secret));
    assert!(!format!("{err:?}").contains(secret));

    fs::write(dir.join("5"), [0xff, 0xfe, 0x00]).unwrap();
    assert!(matches!(
        KeyRepository::load(&dir),
        Err(KeyRepositoryError::MalformedKey { .. })
    ));
}

#[test]
fn non_numeric_empty_and_non_file_entries_are_ignored() {
    let tmp = TempDir::new();
    let dir = tmp.keys();
    KeyRepository::setup(&dir).unwrap();
    let expected = KeyRepository::load(&dir).unwrap();
    fs::write(dir.join("README"), "not a key").unwrap();
    fs::write(dir.join("0.tmp"), "not a key").unwrap();
    fs::write(dir.join("01"), "not a key").unwrap();
    fs::write(dir.join("9"), "").unwrap();
    fs::create_dir(dir.join("4")).unwrap();
    // A key with a trailing newline (e.g. written by hand) is fine.
    let hand = generate_key().unwrap();
    fs::write(dir.join("2"), format!("{hand}\n")).unwrap();
    let keys = KeyRepository::load(&dir).unwrap();
    assert_eq!(keys, [hand, expected[0].clone(), expected[1].clone()]);
    // Rotation ignores them too (and replaces the stale 0.tmp).
    assert_eq!(KeyRepository::rotate(&dir, 3).unwrap().primary, 3);
    assert!(!dir.join("0.tmp").exists());
    assert!(dir.join("README").exists() && dir.join("9").exists());
}

#[test]
fn load_needs_at_least_one_key() {
    let tmp = TempDir::new();
    let dir = tmp.keys();
    assert!(matches!(
        KeyRepository::load(&dir),
        Err(KeyRepositoryError::Io { .. })
    ));
    fs::create_dir(&dir).unwrap();
    assert!(matches!(
        KeyRepository::load(&dir),
        Err(KeyRepositoryError::NoKeys { .. })
    ));
    fs::write(dir.join("0"), "").unwrap();
    assert!(matches!(
        KeyRepository::load(&dir),
        Err(KeyRepositoryError::NoKeys { .. })
    ));
}

#[test]
fn generated_keys_are_fernet_keys() {
    let k = generate_key().unwrap();
    assert_eq!(k.len(), 44);
    assert!(k.ends_with('='));
    assert_ne!(k, generate_key().unwrap());
    assert!(TokenFormatter::new(&[k], default_auth_methods()).is_ok());
}
