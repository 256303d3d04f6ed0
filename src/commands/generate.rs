//! `pullpilot generate man|completions DIR` (hidden; for packaging).
//!
//! Man pages (section 1) and shell completions are rendered from the same clap definitions as
//! `--help`, so they cannot drift from the binary; `tests/packaging.rs` checks that the copies
//! committed under `man/` and `packaging/completions/` are current. The output is deterministic:
//! no date, and no version but the crate's.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

use crate::cli::{Cli, GenerateArgs, GenerateKind};
use crate::error::Outcome;
use crate::output;

/// The shells completions are written for, with the file names `clap_complete` gives them.
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// The documented exit statuses (an API: see `crate::error`).
const EXIT_STATUSES: &[(&str, &str)] = &[
    ("0", "Success, or nothing to do."),
    (
        "1",
        "At least one container failed: an update failed or was rolled back, a registry check \
         failed, or an interrupted update needs a person.",
    ),
    (
        "2",
        "Usage or configuration error: a bad option or PP_* value, no compose project found, an \
         unknown or ambiguous service, a digest that is not in the service's history, a compose \
         file that cannot be written.",
    ),
    ("3", "The Docker daemon is unreachable."),
    (
        "75",
        "Another run holds the lock (EX_TEMPFAIL). A systemd unit can list it in \
         SuccessExitStatus=; --wait queues behind the other run instead.",
    ),
];

pub(super) fn run(args: &GenerateArgs) -> Result<Outcome> {
    fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let written = match args.kind {
        GenerateKind::Man => write_man_pages(&args.dir)?,
        GenerateKind::Completions => write_completions(&args.dir)?,
    };
    let mut listing = String::new();
    for path in written {
        let _ = writeln!(listing, "{}", path.display());
    }
    output::text(&listing);
    Ok(Outcome::Ok)
}

/// The command tree users see: `Cli::command()` without hidden subcommands (clap has no way to
/// remove one, so the root is rebuilt from its parts). Completions would offer `generate`
/// otherwise.
fn visible_command() -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new("pullpilot")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .subcommand_required(full.is_subcommand_required_set())
        .arg_required_else_help(full.is_arg_required_else_help_set())
        .args(full.get_arguments().cloned())
        .subcommands(
            full.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(without_hidden_args),
        );
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    if let Some(long_about) = full.get_long_about() {
        cmd = cmd.long_about(long_about.clone());
    }
    cmd
}

/// `sub` without its hidden arguments (test knobs such as `--ping-interval`), which the man
/// pages leave out but `clap_complete` would offer. Only commands that have some are rebuilt, from
/// the parts they use: name, help texts and arguments. The derive's implicit group (one per
/// `Args` struct, naming every field) is dropped: it constrains nothing here and would name the
/// removed arguments.
fn without_hidden_args(sub: &clap::Command) -> clap::Command {
    if !sub.get_arguments().any(clap::Arg::is_hide_set) {
        return sub.clone();
    }
    debug_assert!(
        sub.get_subcommands().next().is_none() && sub.get_groups().all(|g| !g.is_required_set()),
        "{} has subcommands or a constraining group; rebuild them too",
        sub.get_name()
    );
    let mut cmd = clap::Command::new(sub.get_name().to_owned())
        .args(sub.get_arguments().filter(|a| !a.is_hide_set()).cloned());
    if let Some(about) = sub.get_about() {
        cmd = cmd.about(about.clone());
    }
    if let Some(long_about) = sub.get_long_about() {
        cmd = cmd.long_about(long_about.clone());
    }
    if let Some(after) = sub.get_after_help() {
        cmd = cmd.after_help(after.clone());
    }
    if let Some(after) = sub.get_after_long_help() {
        cmd = cmd.after_long_help(after.clone());
    }
    cmd
}

/// The command tree as the man pages describe it: built (so global options are propagated to
/// every subcommand), without the `help` subcommand.
fn man_command() -> clap::Command {
    let mut cmd = visible_command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Every man page: (file name, roff text). The top page first, then one per visible subcommand.
fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let root = man_command();
    let subcommands: Vec<clap::Command> = root
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut pages = vec![render_page(root, &Extra::Top)?];
    for sub in subcommands {
        pages.push(render_page(sub, &Extra::Subcommand)?);
    }
    Ok(pages)
}

/// The sections added after the ones `clap_mangen` renders.
enum Extra {
    Top,
    Subcommand,
}

fn render_page(cmd: clap::Command, extra: &Extra) -> Result<(String, Vec<u8>)> {
    let has_options = cmd.get_arguments().any(|a| !a.is_hide_set());
    let has_subcommands = cmd.get_subcommands().any(|s| !s.is_hide_set());
    let title = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_uppercase();
    let man = Man::new(cmd);
    let mut body = Vec::new();
    man.render_name_section(&mut body)?;
    man.render_synopsis_section(&mut body)?;
    man.render_description_section(&mut body)?;
    if has_options {
        man.render_options_section(&mut body)?;
    }
    if has_subcommands {
        man.render_subcommands_section(&mut body)?;
    }
    let mut roff = Roff::new();
    match extra {
        Extra::Top => {
            exit_status_section(&mut roff);
            environment_section(&mut roff);
            files_section(&mut roff);
            see_also_section(
                &mut roff,
                &["pullpilot(7)", "systemd.timer(5)", "docker(1)"],
            );
        }
        Extra::Subcommand => see_also_section(&mut roff, &["pullpilot(1)", "pullpilot(7)"]),
    }
    body.extend_from_slice(roff.render().as_bytes());
    // Every render starts with the same apostrophe preamble: keep one, at the top.
    let preamble = Roff::new().render();
    let body = String::from_utf8(body)?.replace(&preamble, "");
    // The .TH line is written here: clap_mangen renders an empty date as nothing, which moves
    // the source and the manual name into the wrong fields. The date stays empty so that the
    // pages do not change from build to build.
    let page = format!(
        "{preamble}.TH {title} 1 \"\" \"pullpilot {}\" \"pullpilot manual\"\n{body}",
        env!("CARGO_PKG_VERSION")
    );
    Ok((man.get_filename(), page.into_bytes()))
}

fn exit_status_section(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_STATUSES {
        roff.control("TP", []);
        roff.text([bold(*code)]);
        roff.text([roman(*meaning)]);
    }
}

fn environment_section(roff: &mut Roff) {
    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([roman(
        "Every option above marked [env: PP_...] can also be set with that variable; the \
         option wins. An invalid value stops the run with exit status 2.",
    )]);
    roff.text([
        bold("pullpilot"),
        roman(
            "(7) lists every variable with its default and accepted forms, and every \
               container label. Docker's DOCKER_HOST, DOCKER_API_VERSION and DOCKER_CONFIG are \
               honoured.",
        ),
    ]);
}

fn files_section(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    for (path, meaning) in [
        (
            "/var/lib/pullpilot/state.json",
            "Soak clocks, pins, blocked digests, history and the journal of updates in flight \
             (the directory is PP_DATA_DIR). state.json.bak is its previous version.",
        ),
        (
            "/var/lib/pullpilot/lock",
            "Held while a run is active; a second run exits with status 75.",
        ),
        (
            "/etc/default/pullpilot",
            "PP_* settings for the packaged systemd units (EnvironmentFile=).",
        ),
    ] {
        roff.control("TP", []);
        roff.text([italic(path)]);
        roff.text([roman(meaning)]);
    }
}

fn see_also_section(roff: &mut Roff, pages: &[&str]) {
    roff.control("SH", ["SEE ALSO"]);
    let mut line = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        let (name, section) = page.split_once('(').unwrap_or((page, ""));
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(bold(name));
        line.push(roman(format!("({section}")));
    }
    roff.text(line);
}

fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (file, text) in man_pages()? {
        let path = dir.join(file);
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn write_completions(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut cmd = visible_command();
    SHELLS
        .into_iter()
        .map(|shell| {
            clap_complete::generate_to(shell, &mut cmd, "pullpilot", dir)
                .with_context(|| format!("cannot write {shell} completions to {}", dir.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every hidden flag of the real command line, as `--name`.
    fn hidden_flags() -> Vec<String> {
        let full = Cli::command();
        full.get_subcommands()
            .flat_map(clap::Command::get_arguments)
            .filter(|a| a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect()
    }

    #[test]
    fn completions_offer_no_hidden_flag_and_keep_the_visible_ones() {
        let hidden = hidden_flags();
        assert!(hidden.contains(&"--ping-interval".to_owned()), "{hidden:?}");
        let mut cmd = visible_command();
        let mut bash = Vec::new();
        clap_complete::generate(Shell::Bash, &mut cmd, "pullpilot", &mut bash);
        let bash = String::from_utf8(bash).unwrap();
        for flag in &hidden {
            assert!(!bash.contains(flag.as_str()), "{flag} is offered");
        }
        for flag in [
            "--debounce",
            "--min-interval",
            "--prune-after",
            "--show-url",
        ] {
            assert!(bash.contains(flag), "{flag} is missing");
        }
    }

    #[test]
    fn the_visible_listen_command_still_parses_its_flags() {
        let mut cmd = visible_command();
        let matches = cmd
            .try_get_matches_from_mut(["pullpilot", "listen", "--debounce", "3s"])
            .unwrap();
        let (name, sub) = matches.subcommand().unwrap();
        assert_eq!(name, "listen");
        assert_eq!(
            sub.get_one::<std::time::Duration>("debounce"),
            Some(&std::time::Duration::from_secs(3))
        );
    }
}
