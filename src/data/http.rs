//! The HTTP of `data fetch`: one GET that follows redirects only to http(s) URLs (ureq's own
//! redirects would take a `file://` Location as one more hop and end with "too many redirects"),
//! and the headers it reads.

use ureq::http::Response as HttpResponse;

pub(super) type Response = HttpResponse<ureq::Body>;

/// Redirects followed before giving up.
pub(super) const MAX_REDIRECTS: usize = 5;
/// The retry hint of every network error.
pub(super) const RETRY: &str = "check the network and run the same command again to resume";

/// Why a request got no usable response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url}: {error}; {RETRY}")]
    Request { url: String, error: String },
    #[error(
        "{url}: redirected to {}: only http and https redirects are followed",
        crate::numfmt::cut(location, 200)
    )]
    Redirect { url: String, location: String },
    #[error("{url}: more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects { url: String },
}

/// Request `url` (from byte `have` on, if any), following up to [`MAX_REDIRECTS`] redirects to
/// http(s) URLs; the final URL and its response.
pub(super) fn request(
    agent: &ureq::Agent,
    url: &str,
    have: u64,
) -> Result<(String, Response), HttpError> {
    let mut at = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let mut req = agent.get(&at);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        let resp = req.call().map_err(|e| HttpError::Request {
            url: at.clone(),
            error: e.to_string(),
        })?;
        if !resp.status().is_redirection() {
            return Ok((at, resp));
        }
        let location = header(&resp, "location").unwrap_or_default();
        at = match location.split_once("://") {
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => location,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => location,
            Some(_) => return Err(HttpError::Redirect { url: at, location }),
            None if location.starts_with('/') => origin(&at) + &location,
            None => match at.rsplit_once('/') {
                Some((dir, _)) => format!("{dir}/{location}"),
                None => location,
            },
        };
    }
    Err(HttpError::TooManyRedirects { url: url.into() })
}

/// `scheme://host[:port]` of `url`.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    format!("{scheme}://{}", rest.split('/').next().unwrap_or(""))
}

pub(super) fn header(resp: &Response, name: &str) -> Option<String> {
    let v = resp.headers().get(name)?.to_str().ok()?;
    Some(v.to_string())
}

/// The start of a `Content-Range: bytes START-END/TOTAL` header.
pub(super) fn range_start(v: &str) -> Option<u64> {
    v.strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}
