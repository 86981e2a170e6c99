//! `completions` and `man` of the three binaries, rendered from their clap definitions: each shell's
//! script is one that shell accepts and names the commands, and the man page is roff naming the flags.

use std::path::PathBuf;
use std::process::Command;

fn binaries() -> Vec<(&'static str, PathBuf, &'static [&'static str])> {
    let stampede = PathBuf::from(env!("CARGO_BIN_EXE_stampede"));
    vec![
        (
            "stampede",
            stampede.clone(),
            &["run", "gate", "export", "--connections", "--threshold"],
        ),
        (
            "stampede-tui",
            stampede.with_file_name("stampede-tui"),
            &["run", "attach", "replay"],
        ),
        (
            "stampede-gateway",
            stampede_loadgen::process::gateway_binary(),
            &["serve", "token"],
        ),
    ]
}

fn output(bin: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn each_binary_completes_in_bash_zsh_and_fish_and_has_a_man_page() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bin, words) in binaries() {
        assert!(
            bin.exists(),
            "{} is built (the workspace build makes every binary)",
            bin.display()
        );
        let bash = output(&bin, &["completions", "bash"]);
        assert!(
            bash.contains(&format!("complete -F _{}", name.replace('-', "__"))),
            "{name}: {bash}"
        );
        let script = dir.path().join(format!("{name}.bash"));
        std::fs::write(&script, &bash).unwrap();
        let syntax = Command::new("bash").arg("-n").arg(&script).output().unwrap();
        assert!(
            syntax.status.success(),
            "{name}: bash -n: {}",
            String::from_utf8_lossy(&syntax.stderr)
        );
        let zsh = output(&bin, &["completions", "zsh"]);
        assert!(
            zsh.starts_with(&format!("#compdef {name}")),
            "{name}: {}",
            &zsh[..zsh.len().min(80)]
        );
        let fish = output(&bin, &["completions", "fish"]);
        assert!(fish.contains(&format!("complete -c {name}")), "{name}");
        let man = output(&bin, &["man"]);
        assert!(
            man.starts_with(".ie \\n(.g .ds Aq") || man.contains(".TH"),
            "{name}: roff"
        );
        assert!(
            man.contains(&format!(".TH {name} 1")),
            "{name}: {}",
            &man[..man.len().min(200)]
        );
        for word in words {
            assert!(bash.contains(word), "{name}: bash completes {word}");
            assert!(
                man.contains(word) || man.contains(&word.replace('-', "\\-")),
                "{name}: the man page names {word}"
            );
        }
        let bad = Command::new(&bin).args(["completions", "tcsh"]).output().unwrap();
        assert_eq!(bad.status.code(), Some(2), "{name}: an unknown shell is bad input");
        assert_eq!(
            String::from_utf8_lossy(&bad.stderr).trim_end().lines().count(),
            1,
            "{name}: one line"
        );
    }
}
