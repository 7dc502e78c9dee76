//! Linux signal names and numbers: `"SIGTERM"`, `"term"`, `"15"`,
//! `"SIGRTMIN+3"`.

/// The standard Linux signals by number (x86/arm layout), without aliases.
const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
];

/// Other names for some of the signals above.
const ALIASES: &[(&str, i32)] = &[
    ("SIGIOT", 6),
    ("SIGCLD", 17),
    ("SIGPOLL", 29),
    ("SIGUNUSED", 31),
];

/// The first and last real-time signal numbers as seen by programs.
const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

const COMMON_HINT: &str = "use a name like SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGKILL, SIGUSR1 or SIGUSR2, or a number from 1 to 64";

/// The canonical name of a signal number: `SIGTERM`, `SIGRTMIN`,
/// `SIGRTMIN+5`, `SIGRTMAX`.
pub fn signal_name(number: i32) -> Option<String> {
    if let Some((name, _)) = SIGNALS.iter().find(|(_, n)| *n == number) {
        return Some((*name).to_string());
    }
    match number {
        SIGRTMIN => Some("SIGRTMIN".to_string()),
        SIGRTMAX => Some("SIGRTMAX".to_string()),
        n if n > SIGRTMIN && n < SIGRTMAX => Some(format!("SIGRTMIN+{}", n - SIGRTMIN)),
        _ => None,
    }
}

/// The number of a signal given by name (any case, with or without `SIG`)
/// or number.
pub fn signal_number(input: &str) -> Result<i32, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err(format!("empty signal; {COMMON_HINT}"));
    }
    let unknown = || format!("unknown signal \"{input}\"; {COMMON_HINT}");
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i32>() {
            Ok(n) if (1..=SIGRTMAX).contains(&n) && signal_name(n).is_some() => Ok(n),
            _ => Err(format!(
                "signal number {text} is out of range; use a number from 1 to 31 or 34 to 64"
            )),
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some((_, n)) = SIGNALS.iter().chain(ALIASES).find(|(s, _)| *s == name) {
        return Ok(*n);
    }
    let realtime = |base: i32, rest: &str| -> Result<i32, String> {
        if rest.is_empty() {
            return Ok(base);
        }
        let (sign, digits) = rest.split_at(1);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unknown());
        }
        let offset: i32 = digits.parse().map_err(|_| unknown())?;
        let n = match sign {
            "+" => base.checked_add(offset),
            "-" => base.checked_sub(offset),
            _ => None,
        }
        .ok_or_else(unknown)?;
        if (SIGRTMIN..=SIGRTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "real-time signal \"{input}\" is out of range; use SIGRTMIN to SIGRTMIN+{}",
                SIGRTMAX - SIGRTMIN
            ))
        }
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        return realtime(SIGRTMIN, rest);
    }
    if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        return realtime(SIGRTMAX, rest);
    }
    Err(unknown())
}

/// Parses a signal given by name (`"SIGTERM"`, `"TERM"`, `"sigterm"`),
/// alias (`"SIGIOT"`), real-time name (`"SIGRTMIN+3"`, `"RTMAX-1"`) or number
/// (`"15"`), and gives its canonical name (`"SIGTERM"`, `"SIGRTMIN+3"`).
pub fn parse_signal(input: &str) -> Result<String, String> {
    let number = signal_number(input)?;
    signal_name(number).ok_or_else(|| format!("unknown signal \"{input}\"; {COMMON_HINT}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_signals() {
        let cases: &[(&str, &str)] = &[
            ("SIGTERM", "SIGTERM"),
            ("TERM", "SIGTERM"),
            ("sigterm", "SIGTERM"),
            ("term", "SIGTERM"),
            ("15", "SIGTERM"),
            (" SIGINT ", "SIGINT"),
            ("9", "SIGKILL"),
            ("1", "SIGHUP"),
            ("31", "SIGSYS"),
            ("SIGIOT", "SIGABRT"),
            ("cld", "SIGCHLD"),
            ("SIGPOLL", "SIGIO"),
            ("SIGUNUSED", "SIGSYS"),
            ("SIGWINCH", "SIGWINCH"),
            ("stkflt", "SIGSTKFLT"),
            ("SIGRTMIN", "SIGRTMIN"),
            ("rtmin", "SIGRTMIN"),
            ("SIGRTMIN+0", "SIGRTMIN"),
            ("SIGRTMIN+3", "SIGRTMIN+3"),
            ("SIGRTMIN+30", "SIGRTMAX"),
            ("SIGRTMAX", "SIGRTMAX"),
            ("SIGRTMAX-1", "SIGRTMIN+29"),
            ("SIGRTMAX-30", "SIGRTMIN"),
            ("34", "SIGRTMIN"),
            ("35", "SIGRTMIN+1"),
            ("64", "SIGRTMAX"),
            ("064", "SIGRTMAX"),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_signal(input), Ok(expected.to_string()), "{input}");
        }
    }

    #[test]
    fn canonical_names_round_trip() {
        for n in (1..=31).chain(34..=64) {
            let name = signal_name(n).unwrap();
            assert_eq!(signal_number(&name), Ok(n), "{name}");
            assert_eq!(parse_signal(&n.to_string()), Ok(name));
        }
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(32), None);
        assert_eq!(signal_name(65), None);
    }

    #[test]
    fn rejects_unknown_signals() {
        let hint = COMMON_HINT;
        let cases: Vec<(&str, String)> =
            vec![
            ("", format!("empty signal; {hint}")),
            ("SIGFOO", format!("unknown signal \"SIGFOO\"; {hint}")),
            ("SIG", format!("unknown signal \"SIG\"; {hint}")),
            ("-9", format!("unknown signal \"-9\"; {hint}")),
            ("SIGRTMIN+", format!("unknown signal \"SIGRTMIN+\"; {hint}")),
            ("SIGRTMIN*2", format!("unknown signal \"SIGRTMIN*2\"; {hint}")),
            ("SIGRTMIN+x", format!("unknown signal \"SIGRTMIN+x\"; {hint}")),
            (
                "SIGRTMIN+99999999999",
                format!("unknown signal \"SIGRTMIN+99999999999\"; {hint}"),
            ),
            (
                "SIGRTMIN+31",
                "real-time signal \"SIGRTMIN+31\" is out of range; use SIGRTMIN to SIGRTMIN+30"
                    .to_string(),
            ),
            (
                "SIGRTMIN-1",
                "real-time signal \"SIGRTMIN-1\" is out of range; use SIGRTMIN to SIGRTMIN+30"
                    .to_string(),
            ),
            (
                "SIGRTMAX+1",
                "real-time signal \"SIGRTMAX+1\" is out of range; use SIGRTMIN to SIGRTMIN+30"
                    .to_string(),
            ),
            (
                "0",
                "signal number 0 is out of range; use a number from 1 to 31 or 34 to 64"
                    .to_string(),
            ),
            (
                "32",
                "signal number 32 is out of range; use a number from 1 to 31 or 34 to 64"
                    .to_string(),
            ),
            (
                "65",
                "signal number 65 is out of range; use a number from 1 to 31 or 34 to 64"
                    .to_string(),
            ),
            (
                "99999999999",
                "signal number 99999999999 is out of range; use a number from 1 to 31 or 34 to 64"
                    .to_string(),
            ),
        ];
        for (input, message) in cases {
            assert_eq!(parse_signal(input), Err(message), "{input}");
        }
    }
}
