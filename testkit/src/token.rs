//! Bearer tokens the gateway accepts (or, with other claims, refuses).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

pub const SECRET: &str = "test-secret";

/// An HS256 token signed with the test secret; `overrides` replaces or removes (null) claims.
pub fn token_with(overrides: Value) -> String {
    token_signed(overrides, SECRET, jsonwebtoken::Algorithm::HS256)
}

pub fn token_signed(overrides: Value, secret: &str, alg: jsonwebtoken::Algorithm) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut claims = json!({
        "sub": "admin@example.com",
        "iat": now,
        "exp": now + 3600,
        "aud": "mcpgateway-api",
        "iss": "mcpgateway",
    });
    for (k, v) in overrides.as_object().expect("object").iter() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}
