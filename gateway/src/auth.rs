//! Bearer JWT auth (HS256), claims as the original gateway checks them: `exp` required, `aud` and
//! `iss` matched, `sub` the user; besides, a token is refused before its time (`nbf`, or an `iat` in
//! the future: a clock or a minting bug, never a token to honour) and when it is over 8 KiB (no header
//! worth decoding is that long). Clocks may differ by up to `LEEWAY_S`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthArgs;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    pub aud: String,
    pub iss: String,
}

/// Who a request's token names (its `sub`): a request extension on every protected route, and the
/// owner of every session the request opens.
#[derive(Debug, Clone)]
pub struct Subject(pub std::sync::Arc<str>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Authorization token required")]
    Missing,
    #[error("Invalid token")]
    Invalid,
}

/// Clock skew forgiven on `exp`, `nbf` and `iat`.
const LEEWAY_S: u64 = 60;
/// A longer bearer token is refused unread.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

pub struct Auth {
    /// Whether a request without a token is refused (else it is `anonymous`).
    required: bool,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    audience: String,
    issuer: String,
}

impl Auth {
    pub fn new(args: &AuthArgs) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[&args.jwt_audience]);
        validation.set_issuer(&[&args.jwt_issuer]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_S;
        Auth {
            required: args.auth_required,
            encoding: EncodingKey::from_secret(args.jwt_secret_key.as_bytes()),
            decoding: DecodingKey::from_secret(args.jwt_secret_key.as_bytes()),
            validation,
            audience: args.jwt_audience.clone(),
            issuer: args.jwt_issuer.clone(),
        }
    }

    /// Check an `Authorization` header value; with `AUTH_REQUIRED=false`, none is `anonymous`.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Claims, AuthError> {
        if header.is_none() && !self.required {
            return Ok(Claims {
                sub: "anonymous".to_owned(),
                exp: u64::MAX,
                iat: 0,
                nbf: None,
                aud: self.audience.clone(),
                iss: self.issuer.clone(),
            });
        }
        let token = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| AuthError::Invalid)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if claims.iat > now + LEEWAY_S {
            return Err(AuthError::Invalid);
        }
        Ok(claims)
    }

    /// A token for `sub` that expires after `ttl`.
    pub fn mint(&self, sub: &str, ttl: Duration) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let claims = Claims {
            sub: sub.to_owned(),
            iat: now.as_secs(),
            nbf: None,
            exp: (now + ttl).as_secs(),
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding of plain claims cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> AuthArgs {
        AuthArgs {
            jwt_secret_key: "k".into(),
            jwt_audience: "mcpgateway-api".into(),
            jwt_issuer: "mcpgateway".into(),
            auth_required: true,
        }
    }

    #[test]
    fn without_auth_required_no_token_is_anonymous_and_a_bad_one_still_refused() {
        let auth = Auth::new(&AuthArgs {
            auth_required: false,
            ..args()
        });
        assert_eq!(auth.verify_header(None).unwrap().sub, "anonymous");
        assert_eq!(
            auth.verify_header(Some("Bearer not.a.jwt")).unwrap_err(),
            AuthError::Invalid
        );
    }

    #[test]
    fn minted_token_verifies_and_others_do_not() {
        let auth = Auth::new(&args());
        let token = auth.mint("admin@example.com", Duration::from_secs(60));
        let claims = auth.verify_header(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(claims.sub, "admin@example.com");
        assert_eq!(auth.verify_header(None).unwrap_err(), AuthError::Missing);
        assert_eq!(auth.verify_header(Some("Basic abc")).unwrap_err(), AuthError::Missing);
        assert_eq!(
            auth.verify_header(Some("Bearer not.a.jwt")).unwrap_err(),
            AuthError::Invalid
        );

        let other = Auth::new(&AuthArgs {
            jwt_secret_key: "other".into(),
            ..args()
        });
        let forged = other.mint("admin@example.com", Duration::from_secs(60));
        assert_eq!(
            auth.verify_header(Some(&format!("Bearer {forged}"))).unwrap_err(),
            AuthError::Invalid
        );

        let wrong_aud = Auth::new(&AuthArgs {
            jwt_audience: "elsewhere".into(),
            ..args()
        });
        let token = wrong_aud.mint("admin@example.com", Duration::from_secs(60));
        assert_eq!(
            auth.verify_header(Some(&format!("Bearer {token}"))).unwrap_err(),
            AuthError::Invalid
        );
    }
}
