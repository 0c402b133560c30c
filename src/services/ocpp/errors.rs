//! The OCPP-J versions the gateway speaks ([`Version`], chosen by WebSocket subprotocol) and the
//! RPC framework error codes a CALLERROR carries ([`ErrorCode`]: one meaning, each version's
//! spelling). It never decides which code a failure deserves and never sends anything.

/// An OCPP-J version, as negotiated by the WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// OCPP-J 1.6, subprotocol `ocpp1.6`.
    V16,
    /// OCPP 2.0.1 part 4 (JSON over WebSockets), subprotocol `ocpp2.0.1`.
    V201,
}

impl Version {
    /// The version a subprotocol names (exact and case-sensitive, as RFC 6455 tokens are).
    pub fn from_subprotocol(name: &str) -> Option<Version> {
        [Version::V16, Version::V201]
            .into_iter()
            .find(|version| version.subprotocol() == name)
    }

    /// The subprotocol token, e.g. `"ocpp1.6"`.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Version::V16 => "ocpp1.6",
            Version::V201 => "ocpp2.0.1",
        }
    }

    fn other(self) -> Version {
        match self {
            Version::V16 => Version::V201,
            Version::V201 => Version::V16,
        }
    }
}

/// What went wrong, as the RPC framework error codes of OCPP-J 1.6 (section 4.2.3) and
/// OCPP 2.0.1 part 4 (section 4.3) say it. Each meaning has one wire name per version
/// ([`name`](ErrorCode::name)); the two 2.0.1-only meanings borrow the nearest 1.6 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The payload (or the message) is syntactically incorrect: 1.6 `FormationViolation`
    /// (the spec's own spelling, kept by its errata), 2.0.1 `FormatViolation`.
    Format,
    /// A field violates occurrence constraints: 1.6 `OccurenceConstraintViolation` (sic),
    /// 2.0.1 `OccurrenceConstraintViolation`.
    Occurrence,
    /// A field holds an invalid value: `PropertyConstraintViolation`.
    PropertyConstraint,
    /// A field has the wrong data type: `TypeConstraintViolation`.
    TypeConstraint,
    /// The payload is incomplete / does not conform to the PDU structure: `ProtocolError`.
    Protocol,
    /// The action is not known: `NotImplemented`.
    NotImplemented,
    /// The action is known but not supported: `NotSupported`.
    NotSupported,
    /// The receiver failed internally: `InternalError`.
    Internal,
    /// A security issue prevented the action: `SecurityError`.
    Security,
    /// Anything else: `GenericError`.
    Generic,
    /// A message type number other than 2, 3, 4: 2.0.1 `MessageTypeNotSupported`;
    /// 1.6 has no such code and gets `NotSupported`.
    MessageTypeNotSupported,
    /// Not a valid RPC message (e.g. its id cannot be read): 2.0.1 `RpcFrameworkError`;
    /// 1.6 has no such code and gets `ProtocolError`.
    RpcFramework,
}

impl ErrorCode {
    /// Every code, in declaration order. The codes both versions have come first, so where a
    /// 1.6 name stands for two meanings (`NotSupported`, `ProtocolError`) the first one wins.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::Format,
        ErrorCode::Occurrence,
        ErrorCode::PropertyConstraint,
        ErrorCode::TypeConstraint,
        ErrorCode::Protocol,
        ErrorCode::NotImplemented,
        ErrorCode::NotSupported,
        ErrorCode::Internal,
        ErrorCode::Security,
        ErrorCode::Generic,
        ErrorCode::MessageTypeNotSupported,
        ErrorCode::RpcFramework,
    ];

    /// The code's wire name in `version`.
    pub fn name(self, version: Version) -> &'static str {
        match (self, version) {
            (ErrorCode::Format, Version::V16) => "FormationViolation",
            (ErrorCode::Format, Version::V201) => "FormatViolation",
            (ErrorCode::Occurrence, Version::V16) => "OccurenceConstraintViolation",
            (ErrorCode::Occurrence, Version::V201) => "OccurrenceConstraintViolation",
            (ErrorCode::PropertyConstraint, _) => "PropertyConstraintViolation",
            (ErrorCode::TypeConstraint, _) => "TypeConstraintViolation",
            (ErrorCode::Protocol, _) => "ProtocolError",
            (ErrorCode::NotImplemented, _) => "NotImplemented",
            (ErrorCode::NotSupported, _) => "NotSupported",
            (ErrorCode::Internal, _) => "InternalError",
            (ErrorCode::Security, _) => "SecurityError",
            (ErrorCode::Generic, _) => "GenericError",
            (ErrorCode::MessageTypeNotSupported, Version::V16) => "NotSupported",
            (ErrorCode::MessageTypeNotSupported, Version::V201) => "MessageTypeNotSupported",
            (ErrorCode::RpcFramework, Version::V16) => "ProtocolError",
            (ErrorCode::RpcFramework, Version::V201) => "RpcFrameworkError",
        }
    }

    /// The code a received name stands for (exact, case-sensitive): `version`'s names first,
    /// then, leniently, the other version's (a 1.6 peer writing `FormatViolation`, or a 2.0.1
    /// one the 1.6 typo). Since the codes both versions share come first in [`ALL`](Self::ALL),
    /// `NotSupported` and `ProtocolError` always read as [`NotSupported`](Self::NotSupported)
    /// and [`Protocol`](Self::Protocol); `None` for a name neither version defines.
    pub fn parse(name: &str, version: Version) -> Option<ErrorCode> {
        [version, version.other()].into_iter().find_map(|version| {
            ErrorCode::ALL
                .into_iter()
                .find(|code| code.name(version) == name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSIONS: [Version; 2] = [Version::V16, Version::V201];

    #[test]
    fn subprotocols() {
        assert_eq!(Version::from_subprotocol("ocpp1.6"), Some(Version::V16));
        assert_eq!(Version::from_subprotocol("ocpp2.0.1"), Some(Version::V201));
        for version in VERSIONS {
            assert_eq!(
                Version::from_subprotocol(version.subprotocol()),
                Some(version)
            );
        }
        for name in [
            "", "ocpp1.5", "ocpp2.0", "ocpp2.1", "OCPP1.6", "ocpp1.6 ", " ocpp1.6",
        ] {
            assert_eq!(Version::from_subprotocol(name), None, "{name:?}");
        }
    }

    #[test]
    fn all_is_in_declaration_order() {
        for (index, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(code as usize, index);
        }
    }

    #[test]
    fn ocpp_1_6_names() {
        // OCPP-J 1.6 section 4.2.3, in the spec's order, spellings included.
        let names: Vec<&str> = [
            ErrorCode::NotImplemented,
            ErrorCode::NotSupported,
            ErrorCode::Internal,
            ErrorCode::Protocol,
            ErrorCode::Security,
            ErrorCode::Format,
            ErrorCode::PropertyConstraint,
            ErrorCode::Occurrence,
            ErrorCode::TypeConstraint,
            ErrorCode::Generic,
        ]
        .into_iter()
        .map(|code| code.name(Version::V16))
        .collect();
        assert_eq!(
            names,
            [
                "NotImplemented",
                "NotSupported",
                "InternalError",
                "ProtocolError",
                "SecurityError",
                "FormationViolation",
                "PropertyConstraintViolation",
                "OccurenceConstraintViolation",
                "TypeConstraintViolation",
                "GenericError",
            ]
        );
        // The two 2.0.1-only meanings borrow a 1.6 code.
        assert_eq!(
            ErrorCode::MessageTypeNotSupported.name(Version::V16),
            "NotSupported"
        );
        assert_eq!(ErrorCode::RpcFramework.name(Version::V16), "ProtocolError");
    }

    #[test]
    fn ocpp_2_0_1_names() {
        // OCPP 2.0.1 part 4 section 4.3, in the spec's (alphabetical) order.
        let mut names: Vec<&str> = ErrorCode::ALL
            .into_iter()
            .map(|code| code.name(Version::V201))
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "FormatViolation",
                "GenericError",
                "InternalError",
                "MessageTypeNotSupported",
                "NotImplemented",
                "NotSupported",
                "OccurrenceConstraintViolation",
                "PropertyConstraintViolation",
                "ProtocolError",
                "RpcFrameworkError",
                "SecurityError",
                "TypeConstraintViolation",
            ]
        );
    }

    #[test]
    fn names_parse_back() {
        for version in VERSIONS {
            for code in ErrorCode::ALL {
                let parsed = ErrorCode::parse(code.name(version), version).unwrap();
                // Same meaning, except where 1.6 borrows a name: then the same wire name.
                assert_eq!(parsed.name(version), code.name(version), "{code:?}");
                if version == Version::V201 {
                    assert_eq!(parsed, code);
                }
            }
        }
        assert_eq!(
            ErrorCode::parse("NotSupported", Version::V16),
            Some(ErrorCode::NotSupported)
        );
        assert_eq!(
            ErrorCode::parse("ProtocolError", Version::V16),
            Some(ErrorCode::Protocol)
        );
    }

    #[test]
    fn parse_accepts_the_other_versions_spelling() {
        for version in VERSIONS {
            for (name, code) in [
                ("FormationViolation", ErrorCode::Format),
                ("FormatViolation", ErrorCode::Format),
                ("OccurenceConstraintViolation", ErrorCode::Occurrence),
                ("OccurrenceConstraintViolation", ErrorCode::Occurrence),
                (
                    "MessageTypeNotSupported",
                    ErrorCode::MessageTypeNotSupported,
                ),
                ("RpcFrameworkError", ErrorCode::RpcFramework),
            ] {
                assert_eq!(ErrorCode::parse(name, version), Some(code), "{name}");
            }
        }
        // Read leniently, written in the connection's version.
        let code = ErrorCode::parse("FormatViolation", Version::V16).unwrap();
        assert_eq!(code.name(Version::V16), "FormationViolation");
    }

    #[test]
    fn parse_refuses_unknown_names() {
        for version in VERSIONS {
            for name in [
                "",
                "formatviolation",
                "FORMATVIOLATION",
                "Format",
                "NotImplemented ",
                "UnknownError",
                "InternalErrorX",
            ] {
                assert_eq!(ErrorCode::parse(name, version), None, "{name:?}");
            }
        }
    }
}
