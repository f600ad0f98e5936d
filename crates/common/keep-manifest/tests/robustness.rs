//! Hostile input: oversize, garbage, invalid TOML, deep nesting, and random
//! mutations of valid manifests. Nothing may panic; every error is one line.

mod common;

use std::path::Path;

use common::{assert_error, error, keep, temp_dir};
use keep_manifest::{
    MAX_MANIFEST_BYTES, Manifest, ManifestError, STARTER, parse_duration_ms, parse_size,
};

const EXAMPLE: &str = include_str!("../../../../examples/Keep.toml");

#[test]
fn oversize_text_is_refused() {
    let mut text = "#".repeat(MAX_MANIFEST_BYTES);
    assert!(keep(&text).is_ok(), "exactly the limit is accepted");
    text.push('\n');
    let result = keep(&text);
    assert!(matches!(result, Err(ManifestError::TooLarge { .. })));
    assert_eq!(
        error(result),
        "dir/Keep.toml: the manifest is larger than 1048576 bytes"
    );
}

#[test]
fn invalid_toml_is_an_error() {
    let cases = [
        ("x = ", "dir/Keep.toml:1:5: "),
        ("[stdio\n", "dir/Keep.toml:1:7: "),
        ("args = [\"a\"\n", "dir/Keep.toml:"),
        ("args = []\nargs = []\n", "dir/Keep.toml:2:1: "),
        ("\u{0}", "dir/Keep.toml:1:"),
        ("\u{feff}garbage", "dir/Keep.toml:"),
        ("[env]\nA = \"\\q\"\n", "dir/Keep.toml:2:"),
    ];
    for (text, prefix) in cases {
        let result = keep(text);
        assert!(
            matches!(result, Err(ManifestError::Toml { .. })),
            "{text:?}: {result:?}"
        );
        assert_error(&error(result), prefix, &[]);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for (open, close) in [("[", "]"), ("{a=", "}")] {
        let text = format!("x = {}1{}", open.repeat(100_000), close.repeat(100_000));
        assert_error(&error(keep(&text)), "dir/Keep.toml:1:", &["recursion"]);
    }
    let keys = vec!["a"; 10_000].join(".");
    assert_error(&error(keep(&format!("{keys} = 1"))), "dir/Keep.toml:", &[]);
}

#[test]
fn control_characters_in_messages_are_escaped() {
    let message = error(keep("\"a\\nb\\u001b[31m\" = 1\n"));
    assert_error(
        &message,
        "dir/Keep.toml:1:1: ",
        &["unknown field `a\\nb\\u{1b}[31m`"],
    );
    let message = error(Manifest::parse("oops", Path::new("evil\nname.toml")));
    assert!(message.starts_with("evil\\nname.toml:1:5: "), "{message}");
}

#[test]
fn load_reads_and_resolves_against_the_file() {
    let dir = temp_dir("load");
    let path = dir.join("Keep.toml");
    std::fs::write(&path, "[[dirs]]\nhost = \"data\"\nguest = \"/data\"\n").expect("write");
    let m = Manifest::load(&path).expect("loads");
    assert_eq!(m.dirs[0].source, dir.join("data").to_str().expect("UTF-8"));

    let enarx = dir.join("Enarx.toml");
    std::fs::write(&enarx, "args = [\"a\"]\n").expect("write");
    assert_eq!(
        Manifest::load(&enarx).map(|m| m.format).ok(),
        Some(keep_manifest::ManifestFormat::Enarx)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn load_refuses_garbage_bytes() {
    let dir = temp_dir("garbage");
    let path = dir.join("Keep.toml");
    std::fs::write(&path, b"args = []\nxy\xff\xfe\x00\x80").expect("write");
    let result = Manifest::load(&path);
    assert!(matches!(result, Err(ManifestError::NotUtf8 { .. })));
    let message = error(result);
    assert_eq!(
        message,
        format!("{}:2:3: the manifest is not UTF-8 text", path.display())
    );

    std::fs::write(&path, vec![b'#'; MAX_MANIFEST_BYTES + 1]).expect("write");
    let result = Manifest::load(&path);
    assert!(matches!(result, Err(ManifestError::TooLarge { .. })));

    let result = Manifest::load(&dir);
    assert!(
        matches!(result, Err(ManifestError::Read { .. })),
        "{result:?}"
    );
    let result = Manifest::load(dir.join("missing.toml"));
    assert!(
        matches!(result, Err(ManifestError::Read { .. })),
        "{result:?}"
    );
    assert_error(
        &error(result),
        &format!(
            "{}: cannot read the manifest: ",
            dir.join("missing.toml").display()
        ),
        &[],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small deterministic generator, so the test needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

#[test]
fn random_mutations_never_panic() {
    const PIECES: &[&str] = &[
        "\"",
        "'",
        "[",
        "]",
        "[[",
        "]]",
        "{",
        "}",
        "=",
        ",",
        ".",
        "\n",
        "#",
        "\\",
        "\\u0000",
        "0",
        "-1",
        "65536",
        "\"0\"",
        "\"1 GiB\"",
        "\"..\"",
        "/",
        ":",
        "é",
        "\u{0}",
        "\r\n",
        "files",
        "kind",
        "\"tls\"",
        "\"null\"",
        "dirs",
        "sockets",
        "limits",
        "steward",
        "9999999999999999999999",
        "\"ms\"",
        "inf",
        "nan",
        "1979-05-27T07:32:00Z",
        "true",
    ];
    let enarx = "args = [\"a\"]\n[env]\nA = \"1\"\n[[files]]\nkind = \"stdin\"\n[[files]]\nkind = \"stdout\"\n\
                 [[files]]\nkind = \"stderr\"\n[[files]]\nname = \"L\"\nkind = \"listen\"\nprot = \"tcp\"\nport = 1\n";
    let seeds = [EXAMPLE, STARTER, enarx];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0;
    for round in 0..3000 {
        let mut text: Vec<char> = seeds[round % seeds.len()].chars().collect();
        for _ in 0..=rng.below(6) {
            let at = rng.below(text.len() + 1);
            match rng.below(3) {
                0 => {
                    let end = (at + rng.below(8)).min(text.len());
                    text.drain(at..end);
                }
                1 => {
                    let piece = PIECES[rng.below(PIECES.len())];
                    for (i, c) in piece.chars().enumerate() {
                        text.insert((at + i).min(text.len()), c);
                    }
                }
                _ => {
                    if let Some(slot) = text.get_mut(at) {
                        *slot = char::from_u32(u32::try_from(rng.below(0x80)).unwrap_or(0))
                            .unwrap_or('?');
                    }
                }
            }
        }
        let text: String = text.into_iter().collect();
        for origin in ["dir/Keep.toml", "Enarx.toml"] {
            match Manifest::parse(&text, Path::new(origin)) {
                Ok(_) => parsed += 1,
                Err(e) => {
                    let message = e.to_string();
                    assert!(!message.contains('\n'), "{message:?}");
                    assert!(message.starts_with(origin), "{message:?}");
                }
            }
        }
        let _ = parse_size(&text);
        let _ = parse_duration_ms(&text);
    }
    assert!(parsed > 0, "some mutations should still parse");
}
