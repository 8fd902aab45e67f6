//! Which characters a value may hold to be written, unquoted, into the files etcdadm makes:
//! systemd units, environment files (which `etcdctl.sh` also sources with `/bin/sh`) and
//! the wrapper script. Values are checked once, where they enter (settings, discovery, the
//! cluster's member list); the renderers then write them as they are.

/// Characters a path may hold: letters, digits and `/ . _ - + @ : , =`. Paths are written
/// unquoted into the etcd unit (`ExecStart=`, `EnvironmentFile=`), the environment files
/// (which `etcdctl.sh` also sources with `/bin/sh`) and the wrapper script; every character
/// here means itself in all of them. Whitespace, quotes, `\`, `$`, `` ` ``, `;`, `&`, `|`,
/// `<`, `>`, `%` (a unit-file specifier), `~`, `*`, `?`, `#` and control characters would be
/// read as syntax by one of them, so they are refused rather than quoted.
pub const PATH_CHARS: &str = "/._-+@:,=";

/// Characters a URL setting may hold besides letters and digits: enough for a scheme, a
/// host (IPv6 in brackets), a port, a path and percent-escapes; nothing that a unit file,
/// an environment file or a shell would interpret.
pub const URL_CHARS: &str = "-._~:/@%+,=[]";

/// How a character is shown in an error: `'\n'`, `' '`, `'$'`.
fn shown(ch: char) -> String {
    match ch {
        ' ' => "a space".into(),
        '\n' => "a newline".into(),
        '\r' => "a carriage return".into(),
        '\t' => "a tab".into(),
        '\0' => "a NUL byte".into(),
        c if c.is_control() => format!("the control character {c:?}"),
        c => format!("{c:?}"),
    }
}

/// The first character of `s` outside ASCII letters, digits and `extra`, shown for an error.
pub fn unsafe_char(s: &str, extra: &str) -> Option<String> {
    s.chars().find(|&c| !(c.is_ascii_alphanumeric() || extra.contains(c))).map(shown)
}

/// Checks that `s` holds only ASCII letters, digits and `extra` (see [`PATH_CHARS`]).
pub fn check_chars(s: &str, extra: &str, what: &str) -> Result<(), String> {
    match unsafe_char(s, extra) {
        None => Ok(()),
        Some(c) => Err(format!(
            "{s:?} contains {c}; {what} may hold only letters, digits and {}",
            extra.chars().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(" ")
        )),
    }
}

/// What a member name may hold besides ASCII letters and digits. Names reach etcd's
/// `--initial-cluster` (`name=url,...`), the environment file and file names.
pub const MEMBER_NAME_EXTRA: &str = "-_.";

/// Whether `s` is a valid member name: not empty, letters, digits and [`MEMBER_NAME_EXTRA`].
pub fn is_member_name(s: &str) -> bool {
    !s.is_empty() && unsafe_char(s, MEMBER_NAME_EXTRA).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ASCII character that a systemd unit, an environment file or sh reads as syntax.
    const SYNTAX: &str = "\n\r\t\0\x0b\x0c\x1b\x7f \"'\\$`;&|<>%~*?#(){}[]!^";

    #[test]
    fn no_character_that_a_unit_an_environment_file_or_sh_interprets_is_a_path_or_name_char() {
        for c in SYNTAX.chars().filter(|c| !"[]".contains(*c)) {
            assert!(!PATH_CHARS.contains(c), "{c:?} in PATH_CHARS");
            assert!(!URL_CHARS.contains(c) || "%~".contains(c), "{c:?} in URL_CHARS");
        }
        for c in SYNTAX.chars() {
            assert!(!MEMBER_NAME_EXTRA.contains(c), "{c:?} in MEMBER_NAME_EXTRA");
            assert!(!is_member_name(&format!("m{c}1")), "{c:?} in a member name");
            let shown = check_chars(&format!("/a{c}b"), PATH_CHARS, "a path").unwrap_err();
            assert!(!shown.contains(['\n', '\r', '\0']), "shown raw: {shown}");
        }
        assert!(check_chars("/var/lib/etcd-1/a_b.c+d@e:f,g=h", PATH_CHARS, "a path").is_ok());
        assert!(!is_member_name("") && !is_member_name("é") && is_member_name("i-0abc.x_y"));
        assert_eq!(unsafe_char("/a b", PATH_CHARS).as_deref(), Some("a space"));
        assert_eq!(unsafe_char("/a\nb", PATH_CHARS).as_deref(), Some("a newline"));
    }
}
