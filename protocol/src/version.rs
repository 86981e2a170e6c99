//! The protocol versions spoken here, and the era each belongs to.

/// A protocol revision, oldest first (the derived order is the specification's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V2024_11_05,
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
    V2026_07_28,
}

/// How a client and a server agree on a version and keep their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Era {
    /// `initialize` negotiates the version; the server keeps a session named by `Mcp-Session-Id`.
    #[default]
    Session,
    /// No handshake and no session: every request names its version in `params._meta`.
    Stateless,
}

impl Era {
    pub fn as_str(self) -> &'static str {
        match self {
            Era::Session => "session",
            Era::Stateless => "stateless",
        }
    }

    /// The era of a POST, by its `MCP-Protocol-Version` header: none (an `initialize`, or an older
    /// client) or a session-era version is the session era; any other value, unknown ones included,
    /// goes to the stateless era, whose checks answer an unknown version with the supported ones.
    pub fn of_post(version_header: Option<&str>) -> Era {
        match version_header.map(Version::parse) {
            None => Era::Session,
            Some(Some(v)) if v.era() == Era::Session => Era::Session,
            Some(_) => Era::Stateless,
        }
    }
}

impl Version {
    pub const ALL: [Version; 5] = [
        Version::V2024_11_05,
        Version::V2025_03_26,
        Version::V2025_06_18,
        Version::V2025_11_25,
        Version::V2026_07_28,
    ];
    /// The newest version `initialize` can negotiate.
    pub const LATEST_SESSION: Version = Version::V2025_11_25;
    pub const LATEST: Version = Version::V2026_07_28;

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2024_11_05 => "2024-11-05",
            Version::V2025_03_26 => "2025-03-26",
            Version::V2025_06_18 => "2025-06-18",
            Version::V2025_11_25 => "2025-11-25",
            Version::V2026_07_28 => "2026-07-28",
        }
    }

    pub fn parse(text: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.as_str() == text)
    }

    pub fn era(self) -> Era {
        if self >= Version::V2026_07_28 {
            Era::Stateless
        } else {
            Era::Session
        }
    }

    /// What a server answers an `initialize` that asked for `requested`: that version when it is a
    /// session-era one spoken here, else the newest session-era version (the specification's SHOULD).
    pub fn negotiate(requested: Option<&str>) -> Version {
        requested
            .and_then(Version::parse)
            .filter(|v| v.era() == Era::Session)
            .unwrap_or(Version::LATEST_SESSION)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_s_era_follows_its_version_header() {
        assert_eq!(Era::of_post(None), Era::Session);
        assert_eq!(Era::of_post(Some("2025-06-18")), Era::Session);
        assert_eq!(Era::of_post(Some("2026-07-28")), Era::Stateless);
        assert_eq!(Era::of_post(Some("2099-01-01")), Era::Stateless);
    }

    #[test]
    fn initialize_answers_the_newest_session_version_for_one_it_does_not_speak() {
        assert_eq!(Version::negotiate(Some("2025-03-26")), Version::V2025_03_26);
        assert_eq!(Version::negotiate(Some("2026-07-28")), Version::V2025_11_25);
        assert_eq!(Version::negotiate(Some("2099-01-01")), Version::V2025_11_25);
        assert_eq!(Version::negotiate(None), Version::V2025_11_25);
    }
}
