//! Whether a string is a mailbox (`team@example.org`, `mlops-tui <mlops@example.org>`), checked
//! without the mail transport.
//!
//! The sender parses the same strings again when it builds a message, so a value accepted here must
//! be one it accepts, and a value it refuses must be refused here, at load time, with the file and
//! line. The grammar below is RFC 2822's `mailbox` with its obsolete forms, as the sender's parser
//! reads it: every rule is an ordered choice that never backtracks into an alternative once one has
//! matched, and repetitions are greedy. The user and domain it yields are then checked as the sender
//! checks them: the local part and the domain by `email_address`, a domain that is not ASCII after
//! IDNA conversion, or an IP address in brackets.
//!
//! The reasons read as the sender's do (`Invalid input`, `Invalid email user`, `Invalid email
//! domain`): they appear in configuration errors users already know.

use std::fmt;

use ::core::net::IpAddr;

/// Why a string is not a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxError {
    /// Not a mailbox by its grammar.
    InvalidInput,
    InvalidUser,
    InvalidDomain,
}

impl fmt::Display for MailboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MailboxError::InvalidInput => "Invalid input",
            MailboxError::InvalidUser => "Invalid email user",
            MailboxError::InvalidDomain => "Invalid email domain",
        })
    }
}

/// Checks `src` as a mailbox: an optional display name and an address in angle brackets, or a bare
/// address, with white space around.
pub fn check(src: &str) -> Result<(), MailboxError> {
    let (user, domain) = Parser::new(src)
        .mailbox()
        .ok_or(MailboxError::InvalidInput)?;
    if !email_address::EmailAddress::is_valid_local_part(&user) {
        return Err(MailboxError::InvalidUser);
    }
    if domain_ascii_ok(&domain) {
        return Ok(());
    }
    match idna::domain_to_ascii(&domain) {
        Ok(ascii) if domain_ascii_ok(&ascii) => Ok(()),
        _ => Err(MailboxError::InvalidDomain),
    }
}

/// A domain name, or an IP address (bare or in brackets).
fn domain_ascii_ok(domain: &str) -> bool {
    if email_address::EmailAddress::is_valid_domain(domain) {
        return true;
    }
    let ip = domain
        .strip_prefix('[')
        .and_then(|ip| ip.strip_suffix(']'))
        .unwrap_or(domain);
    ip.parse::<IpAddr>().is_ok()
}

/// A position in the input; every rule answers its value and moves `at` past what it matched, or
/// answers `None` and leaves `at` where it was.
struct Parser {
    chars: Vec<char>,
    at: usize,
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || c.len_utf8() > 1
}

fn is_no_ws_ctl(c: char) -> bool {
    matches!(u32::from(c), 1..=8 | 11 | 12 | 14..=31 | 127)
}

fn is_text(c: char) -> bool {
    matches!(u32::from(c), 1..=9 | 11 | 12 | 14..=127)
}

fn is_qtext(c: char) -> bool {
    matches!(u32::from(c), 33 | 35..=91 | 93..=126) || is_no_ws_ctl(c)
}

impl Parser {
    fn new(src: &str) -> Parser {
        Parser {
            chars: src.chars().collect(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn eat(&mut self, ok: impl Fn(char) -> bool) -> Option<char> {
        let c = self.peek().filter(|&c| ok(c))?;
        self.at += 1;
        Some(c)
    }

    fn eat_char(&mut self, want: char) -> Option<char> {
        self.eat(|c| c == want)
    }

    /// Runs `rule`, putting the position back when it fails.
    fn attempt<T>(&mut self, rule: impl FnOnce(&mut Parser) -> Option<T>) -> Option<T> {
        let start = self.at;
        let out = rule(self);
        if out.is_none() {
            self.at = start;
        }
        out
    }

    fn skip_while(&mut self, ok: impl Fn(char) -> bool) {
        while self.eat(&ok).is_some() {}
    }

    fn text_from(&self, start: usize) -> String {
        self.chars[start..self.at].iter().collect()
    }

    /// The whole input: white space, a `name-addr` or else an `addr-spec`, white space, the end.
    fn mailbox(&mut self) -> Option<(String, String)> {
        self.skip_while(char::is_whitespace);
        let addr = match self.attempt(Parser::name_addr) {
            Some(addr) => addr,
            None => self.attempt(Parser::addr_spec)?,
        };
        self.skip_while(char::is_whitespace);
        (self.at == self.chars.len()).then_some(addr)
    }

    fn name_addr(&mut self) -> Option<(String, String)> {
        self.attempt(Parser::phrase);
        self.angle_addr()
    }

    fn angle_addr(&mut self) -> Option<(String, String)> {
        self.attempt(|p| {
            p.fws();
            p.eat_char('<')?;
            let addr = p.addr_spec()?;
            p.eat_char('>')?;
            p.fws();
            Some(addr)
        })
    }

    /// A display name (`obs-phrase`: words, with dots and white space between them); its value is
    /// not needed.
    fn phrase(&mut self) -> Option<()> {
        self.word()?;
        while self
            .attempt(|p| {
                p.fws();
                match p.attempt(Parser::word) {
                    Some(_) => Some(()),
                    None => p.eat_char('.').map(|_| ()),
                }
            })
            .is_some()
        {}
        Some(())
    }

    fn addr_spec(&mut self) -> Option<(String, String)> {
        self.attempt(|p| {
            let user = p.local_part()?;
            p.eat_char('@')?;
            let domain = p.domain()?;
            Some((user, domain))
        })
    }

    fn local_part(&mut self) -> Option<String> {
        if let Some(s) = self.attempt(Parser::dot_atom) {
            return Some(s);
        }
        if let Some(s) = self.attempt(Parser::quoted_string) {
            return Some(s);
        }
        self.attempt(|p| p.dotted(Parser::word))
    }

    fn domain(&mut self) -> Option<String> {
        if let Some(s) = self.attempt(Parser::dot_atom) {
            return Some(s);
        }
        self.attempt(|p| p.dotted(Parser::atom))
    }

    /// `part ("." part)*`, joined with dots (`obs-local-part`, `obs-domain`).
    fn dotted(&mut self, part: fn(&mut Parser) -> Option<String>) -> Option<String> {
        let mut out = self.attempt(part)?;
        while let Some(next) = self.attempt(|p| {
            p.eat_char('.')?;
            part(p)
        }) {
            out.push('.');
            out.push_str(&next);
        }
        Some(out)
    }

    /// Folding white space: answers its first character, if any.
    fn fws(&mut self) -> Option<char> {
        let first = self.eat(|c| c == ' ' || c == '\t');
        self.skip_while(|c| c == ' ' || c == '\t');
        first
    }

    fn atoms(&mut self) -> Option<()> {
        self.eat(is_atext)?;
        self.skip_while(is_atext);
        Some(())
    }

    fn atom(&mut self) -> Option<String> {
        self.attempt(|p| {
            p.fws();
            let start = p.at;
            p.atoms()?;
            Some(p.text_from(start))
        })
    }

    fn dot_atom(&mut self) -> Option<String> {
        self.attempt(|p| {
            p.fws();
            let start = p.at;
            p.atoms()?;
            while p
                .attempt(|p| {
                    p.eat_char('.')?;
                    p.atoms()
                })
                .is_some()
            {}
            Some(p.text_from(start))
        })
    }

    fn word(&mut self) -> Option<String> {
        if let Some(s) = self.attempt(Parser::quoted_string) {
            return Some(s);
        }
        self.attempt(Parser::atom)
    }

    fn qcontent(&mut self) -> Option<char> {
        if let Some(c) = self.eat(is_qtext) {
            return Some(c);
        }
        let pair = self.attempt(|p| {
            p.eat_char('\\')?;
            p.eat(is_text)
        });
        if pair.is_some() {
            return pair;
        }
        self.eat(|c| c.len_utf8() > 1)
    }

    /// `"…"`: its content, each run of white space inside kept as its first character.
    fn quoted_string(&mut self) -> Option<String> {
        self.attempt(|p| {
            p.eat_char('"')?;
            let mut out = String::new();
            while let Some((ws, c)) = p.attempt(|p| {
                let ws = p.fws();
                Some((ws, p.qcontent()?))
            }) {
                out.extend(ws);
                out.push(c);
            }
            p.fws();
            p.eat_char('"')?;
            Some(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_people_write_are_mailboxes() {
        for ok in [
            "team@example.org",
            "mlops-tui <mlops@example.org>",
            "  \"Ops, team\" <ops@example.org>  ",
            "<a.b+c@example.org>",
            "ops@bücher.example",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn what_is_not_a_mailbox_says_why() {
        for (bad, why) in [
            ("team at example.org", MailboxError::InvalidInput),
            ("", MailboxError::InvalidInput),
            ("ops@", MailboxError::InvalidInput),
            ("ops@[127.0.0.1]", MailboxError::InvalidInput),
            ("a <b@example.org", MailboxError::InvalidInput),
            ("ops@exa_mple..org", MailboxError::InvalidInput),
            ("ops@-example.org", MailboxError::InvalidDomain),
        ] {
            assert_eq!(check(bad), Err(why), "{bad}");
        }
        assert_eq!(MailboxError::InvalidInput.to_string(), "Invalid input");
    }
}
