//! hCaptcha on the web channel: one shared client, every verification with a
//! deadline, and a configuration checked before the service starts (the crate
//! panics on some malformed secrets instead of refusing them).

use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;
use tracing::{error, warn};

/// hCaptcha's own address; tests point `UNDERSIGNED_HCAPTCHA_VERIFY_URL` at a fake.
pub const DEFAULT_VERIFY_URL: &str = "https://api.hcaptcha.com/siteverify";

#[derive(Debug, Error)]
pub enum CaptchaConfigError {
    #[error(
        "UNDERSIGNED_HCAPTCHA_SECRET is malformed: expected 0x and 40 hex digits, or ES_ and 32 hex digits"
    )]
    Secret,
    #[error("UNDERSIGNED_HCAPTCHA_SITEKEY is malformed: expected a UUID")]
    Sitekey,
    #[error("UNDERSIGNED_HCAPTCHA_SITEKEY is required with UNDERSIGNED_HCAPTCHA_SECRET")]
    MissingSitekey,
    #[error("UNDERSIGNED_HCAPTCHA_VERIFY_URL: {0}; expected a URL like {DEFAULT_VERIFY_URL}")]
    VerifyUrl(String),
}

/// Why a signature's captcha did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CaptchaRefusal {
    /// No token came with the signature.
    #[error("captcha required")]
    Missing,
    /// hCaptcha says the token is not a solved, fresh captcha for this site.
    #[error("captcha failed")]
    Failed,
    /// hCaptcha did not answer in time, or not sensibly.
    #[error("captcha service unreachable")]
    Unreachable,
    /// hCaptcha refused the service's own credentials: never accepted
    /// unverified, whatever the petition says about outages.
    #[error("captcha misconfigured")]
    Misconfigured,
}

pub struct Captcha {
    client: hcaptcha::Client,
    secret: String,
    sitekey: String,
    timeout: Duration,
}

impl Captcha {
    /// `None` when no secret is configured: captchas are then never asked for.
    pub fn new(
        secret: &str,
        sitekey: &str,
        verify_url: &str,
        timeout: Duration,
    ) -> Result<Option<Self>, CaptchaConfigError> {
        let (secret, sitekey) = (secret.trim(), sitekey.trim());
        if secret.is_empty() {
            return Ok(None);
        }
        // The crate slices the first two bytes of a secret before checking it.
        if secret.len() < 3 || !secret.is_ascii() {
            return Err(CaptchaConfigError::Secret);
        }
        let probe = hcaptcha::Captcha::new("probe").map_err(|_| CaptchaConfigError::Secret)?;
        hcaptcha::Request::new(secret, probe).map_err(|_| CaptchaConfigError::Secret)?;
        if sitekey.is_empty() {
            return Err(CaptchaConfigError::MissingSitekey);
        }
        let probe = hcaptcha::Captcha::new("probe").map_err(|_| CaptchaConfigError::Sitekey)?;
        hcaptcha::Request::new(secret, probe)
            .and_then(|r| r.set_sitekey(sitekey))
            .map_err(|_| CaptchaConfigError::Sitekey)?;
        let client = hcaptcha::Client::new_with(verify_url)
            .map_err(|e| CaptchaConfigError::VerifyUrl(e.to_string()))?;
        Ok(Some(Self {
            client,
            secret: secret.to_owned(),
            sitekey: sitekey.to_owned(),
            timeout,
        }))
    }

    /// The public site key, for forms to render the widget.
    pub fn sitekey(&self) -> &str {
        &self.sitekey
    }

    /// Asks hCaptcha whether `token` is a solved captcha from `client`.
    pub async fn verify(&self, token: Option<&str>, client: IpAddr) -> Result<(), CaptchaRefusal> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(CaptchaRefusal::Missing)?;
        let request = hcaptcha::Captcha::new(token)
            .and_then(|mut c| c.set_remoteip(&client.to_string()))
            .and_then(|c| hcaptcha::Request::new(&self.secret, c))
            .and_then(|r| r.set_sitekey(&self.sitekey))
            .map_err(|_| CaptchaRefusal::Failed)?;
        match tokio::time::timeout(self.timeout, self.client.verify_request(request)).await {
            Err(_) => {
                warn!("hcaptcha did not answer in time");
                Err(CaptchaRefusal::Unreachable)
            }
            Ok(Ok(response)) if response.success() => Ok(()),
            Ok(Ok(_)) => Err(CaptchaRefusal::Failed),
            Ok(Err(hcaptcha::Error::Codes(codes))) => {
                use hcaptcha::Code;
                let ours = [
                    Code::MissingSecret,
                    Code::InvalidSecret,
                    Code::MissingSiteKey,
                    Code::InvalidSiteKey,
                    Code::SiteSecretMismatch,
                    Code::BadRequest,
                ];
                if codes.iter().any(|c| ours.contains(c)) {
                    // Our configuration, not the signer's captcha, is at fault.
                    error!(?codes, "hcaptcha refused the service's own request");
                    Err(CaptchaRefusal::Misconfigured)
                } else {
                    Err(CaptchaRefusal::Failed)
                }
            }
            Ok(Err(e)) => {
                warn!(error = %e, "hcaptcha unreachable");
                Err(CaptchaRefusal::Unreachable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0x0000000000000000000000000000000000000000";
    const SITEKEY: &str = "10000000-ffff-ffff-ffff-000000000001";

    fn new(secret: &str, sitekey: &str) -> Result<Option<Captcha>, CaptchaConfigError> {
        Captcha::new(secret, sitekey, DEFAULT_VERIFY_URL, Duration::from_secs(1))
    }

    #[test]
    fn no_secret_no_captcha() {
        assert!(new("", "").unwrap().is_none());
    }

    #[test]
    fn malformed_settings_are_refused_not_panicked_on() {
        for bad in ["x", "0x", "é", "0x123", "not a secret at all"] {
            assert!(
                matches!(new(bad, SITEKEY), Err(CaptchaConfigError::Secret)),
                "{bad}"
            );
        }
        assert!(matches!(
            new(SECRET, ""),
            Err(CaptchaConfigError::MissingSitekey)
        ));
        assert!(matches!(
            new(SECRET, "site"),
            Err(CaptchaConfigError::Sitekey)
        ));
        assert!(matches!(
            Captcha::new(SECRET, SITEKEY, "not a url", Duration::from_secs(1)),
            Err(CaptchaConfigError::VerifyUrl(_))
        ));
        assert_eq!(new(SECRET, SITEKEY).unwrap().unwrap().sitekey(), SITEKEY);
    }
}
