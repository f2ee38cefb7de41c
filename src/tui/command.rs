//! The `:` command line: what does not deserve a key of its own.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `:q`; `force` (`:q!`) skips the question while training.
    Quit {
        force: bool,
    },
    Theme(String),
    Target(f64),
    /// `:w [FILE]`: save the shown logs.
    Save(Option<PathBuf>),
    Help,
    Pause(bool),
    /// `:auto` / `:ask`.
    Auto(bool),
    Retry,
    Trigger,
    Stop,
    Wrap,
    Timestamps,
}

/// Every command with its one-line help, for the help overlay.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        ":theme NAME",
        "switch theme (dark, light, colorblind, or a user theme)",
    ),
    (":target X", "set the metric target of this and later runs"),
    (
        ":w [FILE]",
        "save the shown logs (default: the state directory)",
    ),
    (":pause / :resume", "pause or resume the loop"),
    (":auto / :ask", "apply proposals at once, or ask first"),
    (":retry  :trigger  :stop", "as r, t and s"),
    (":wrap  :timestamps", "as w and T"),
    (":q  :q!", "quit (:q! without asking)"),
];

pub fn parse(input: &str) -> Result<Command, String> {
    let input = input.trim().trim_start_matches(':');
    let (word, arg) = match input.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (input, ""),
    };
    let no_arg = |c: Command| {
        if arg.is_empty() {
            Ok(c)
        } else {
            Err(format!(":{word} takes no argument"))
        }
    };
    match word {
        "q" | "quit" => no_arg(Command::Quit { force: false }),
        "q!" | "quit!" => no_arg(Command::Quit { force: true }),
        "theme" if arg.is_empty() => Err(":theme needs a name: dark, light, colorblind".into()),
        "theme" => Ok(Command::Theme(arg.to_string())),
        "target" => match arg.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Command::Target(v)),
            _ => Err(format!(":target needs a number, not \"{arg}\"")),
        },
        "w" | "write" | "save" => Ok(Command::Save((!arg.is_empty()).then(|| PathBuf::from(arg)))),
        "h" | "help" => no_arg(Command::Help),
        "pause" => no_arg(Command::Pause(true)),
        "resume" => no_arg(Command::Pause(false)),
        "auto" => no_arg(Command::Auto(true)),
        "ask" => no_arg(Command::Auto(false)),
        "retry" => no_arg(Command::Retry),
        "trigger" => no_arg(Command::Trigger),
        "stop" => no_arg(Command::Stop),
        "wrap" => no_arg(Command::Wrap),
        "timestamps" | "ts" => no_arg(Command::Timestamps),
        "" => Err("empty command (try :help)".into()),
        other => Err(format!("unknown command \":{other}\" (try :help)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_commands() {
        assert_eq!(parse("theme light"), Ok(Command::Theme("light".into())));
        assert_eq!(parse(":target 0.97"), Ok(Command::Target(0.97)));
        assert_eq!(parse("q"), Ok(Command::Quit { force: false }));
        assert_eq!(parse("q!"), Ok(Command::Quit { force: true }));
        assert_eq!(
            parse("w /tmp/x.log"),
            Ok(Command::Save(Some("/tmp/x.log".into())))
        );
        assert_eq!(parse("w"), Ok(Command::Save(None)));
    }

    #[test]
    fn errors_quote_the_bad_input() {
        assert_eq!(
            parse("target high"),
            Err(":target needs a number, not \"high\"".into())
        );
        assert_eq!(
            parse("frobnicate"),
            Err("unknown command \":frobnicate\" (try :help)".into())
        );
        assert_eq!(parse("q now"), Err(":q takes no argument".into()));
    }
}
