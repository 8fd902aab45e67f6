//! A bearer token from the instance's metadata service (GCE's default service account,
//! Azure's managed identity): checked before it goes into a header, used until the time its
//! provider allows, never shown.

use std::time::{Duration, Instant};

/// A token goes into an `Authorization` header: visible ASCII, at most this long.
const MAX_LEN: usize = 4096;

pub(super) struct BearerToken {
    value: String,
    use_until: Instant,
}

impl BearerToken {
    /// `value`, to be used for `use_for` from now; refused (the reason, which never quotes
    /// it) when it is empty, too long or not printable ASCII.
    pub(super) fn new(value: String, use_for: Duration) -> Result<BearerToken, &'static str> {
        if value.is_empty() || value.len() > MAX_LEN || !value.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err("the access_token is empty, longer than 4096 bytes or not printable ASCII");
        }
        Ok(BearerToken { value, use_until: Instant::now() + use_for })
    }

    /// The token while it is to be used.
    pub(super) fn current(&self) -> Option<&str> {
        (Instant::now() < self.use_until).then_some(self.value.as_str())
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerToken").field("use_until", &self.use_until).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_checked_used_for_its_time_and_never_shown() {
        let t =
            BearerToken::new("eyJ0eXAiOiJKV1Qi-secret".into(), Duration::from_secs(60)).unwrap();
        assert_eq!(t.current(), Some("eyJ0eXAiOiJKV1Qi-secret"));
        assert!(!format!("{t:?}").contains("secret"));
        let spent = BearerToken::new("ya29.x".into(), Duration::ZERO).unwrap();
        assert_eq!(spent.current(), None, "a token past its time is not used");
        for bad in ["", "two words", "line\nbreak", "é"] {
            assert!(BearerToken::new(bad.into(), Duration::from_secs(60)).is_err(), "{bad:?}");
        }
        assert!(BearerToken::new("a".repeat(4097), Duration::from_secs(60)).is_err());
        assert!(BearerToken::new("a".repeat(4096), Duration::from_secs(60)).is_ok());
    }
}
