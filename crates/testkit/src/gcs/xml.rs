//! The XML API's object copy and multipart upload, which fake-gcs-server does not serve, done
//! by the front on the emulator's JSON API, with GCS's rules: parts of at least 5 MiB except
//! the last, numbered 1 to 10000, completed in ascending order with the ETags their uploads
//! returned; an upload id belongs to one object; a completion or a copy honours
//! `x-goog-if-generation-match: 0` atomically (see [`Write::locked`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};

use super::{reply, send, Counters, Write};

/// Multipart uploads in progress, by upload id.
pub(super) type Uploads = HashMap<String, Upload>;

/// One multipart upload: its object and the parts received so far.
pub(super) struct Upload {
    bucket: String,
    key: String,
    parts: BTreeMap<u32, Part>,
}

struct Part {
    etag: String,
    bytes: Bytes,
}

/// GCS's smallest part, except the last.
const MIN_PART: usize = 5 << 20;

const MAX_PART_NUMBER: u32 = 10_000;

/// An error reply in the XML API's form.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    reply(
        status,
        format!(
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ),
    )
}

/// The headers an XML API write answers with: the object's ETag and generation, from its
/// JSON metadata.
pub(super) fn put_headers(r: &mut Response<Full<Bytes>>, meta: &serde_json::Value) -> Result<()> {
    let h = r.headers_mut();
    h.insert(
        hyper::header::ETAG,
        format!("\"{}\"", meta["etag"].as_str().unwrap_or_default()).parse()?,
    );
    h.insert(
        "x-goog-generation",
        meta["generation"].as_str().unwrap_or("1").parse()?,
    );
    Ok(())
}

fn no_such_upload() -> Response<Full<Bytes>> {
    error(
        StatusCode::NOT_FOUND,
        "NoSuchUpload",
        "The requested upload was not found.",
    )
}

/// `POST /bucket/key?uploads`.
pub(super) async fn initiate(
    counters: &Counters,
    (bucket, key): (&str, &str),
) -> Response<Full<Bytes>> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("front-upload-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    counters.uploads.lock().await.insert(
        id.clone(),
        Upload {
            bucket: bucket.to_string(),
            key: key.to_string(),
            parts: BTreeMap::new(),
        },
    );
    reply(
        StatusCode::OK,
        format!(
            "<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult xmlns='http://s3.amazonaws.com/doc/2006-03-01/'><Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>"
        ),
    )
}

/// `PUT /bucket/key?partNumber=N&uploadId=ID`: the part is kept (replacing an earlier one of
/// the same number) until the completion.
pub(super) async fn put_part(
    counters: &Counters,
    (bucket, key): (&str, &str),
    id: &str,
    number: &str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let Some(number) = number
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive.",
        );
    };
    let mut uploads = counters.uploads.lock().await;
    let Some(upload) = uploads
        .get_mut(id)
        .filter(|u| u.bucket == bucket && u.key == key)
    else {
        return no_such_upload();
    };
    let etag = format!("\"{}\"", content_hash(&body));
    upload.parts.insert(
        number,
        Part {
            etag: etag.clone(),
            bytes: body,
        },
    );
    let mut r = reply(StatusCode::OK, String::new());
    if let Ok(v) = etag.parse() {
        r.headers_mut().insert(hyper::header::ETAG, v);
    }
    r
}

/// `POST /bucket/key?uploadId=ID` with the list of parts: checks the list, then writes the
/// object (create-only if asked) from the parts joined.
pub(super) async fn complete(
    w: &Write<'_>,
    (bucket, key): (&str, &str),
    id: &str,
    body: &[u8],
) -> Result<Response<Full<Bytes>>> {
    let Some(listed) = parse_complete(body) else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "The XML you provided was not well-formed.",
        ));
    };
    let joined = {
        let uploads = w.counters.uploads.lock().await;
        let Some(upload) = uploads
            .get(id)
            .filter(|u| u.bucket == bucket && u.key == key)
        else {
            return Ok(no_such_upload());
        };
        match join(upload, &listed) {
            Ok(b) => b,
            Err((status, code, message)) => return Ok(error(status, code, message)),
        }
    };
    let resp = w
        .locked(|| async {
            let meta = match w.upload_unlocked(bucket, key, None, joined).await? {
                Ok(meta) => meta,
                Err(resp) => return Ok(resp),
            };
            let etag = meta["etag"].as_str().unwrap_or_default();
            let mut r = reply(
                StatusCode::OK,
                format!(
                    "<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult xmlns='http://s3.amazonaws.com/doc/2006-03-01/'><Bucket>{bucket}</Bucket><Key>{key}</Key><ETag>\"{etag}\"</ETag></CompleteMultipartUploadResult>"
                ),
            );
            put_headers(&mut r, &meta)?;
            Ok(r)
        })
        .await?;
    if resp.status().is_success() {
        w.counters.uploads.lock().await.remove(id);
    }
    Ok(resp)
}

/// GCS's refusal of a request: status, code and message of its XML error.
type Refusal = (StatusCode, &'static str, &'static str);

/// The object a completion lists, or why GCS refuses the list.
fn join(upload: &Upload, listed: &[(u32, String)]) -> std::result::Result<Bytes, Refusal> {
    let invalid = |m| (StatusCode::BAD_REQUEST, "InvalidPart", m);
    if listed.is_empty() {
        return Err(invalid("You must specify at least one part."));
    }
    if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err((
            StatusCode::BAD_REQUEST,
            "InvalidPartOrder",
            "The list of parts was not in ascending order.",
        ));
    }
    let mut out = BytesMut::new();
    for (i, (number, etag)) in listed.iter().enumerate() {
        let Some(part) = upload.parts.get(number) else {
            return Err(invalid(
                "One or more of the specified parts could not be found.",
            ));
        };
        if part.etag.trim_matches('"') != etag.trim_matches('"') {
            return Err(invalid("The ETag of a part does not match."));
        }
        if i + 1 < listed.len() && part.bytes.len() < MIN_PART {
            return Err((
                StatusCode::BAD_REQUEST,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            ));
        }
        out.extend_from_slice(&part.bytes);
    }
    Ok(out.freeze())
}

/// `(part number, ETag)` of each `<Part>` of a `<CompleteMultipartUpload>` body.
fn parse_complete(body: &[u8]) -> Option<Vec<(u32, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains("<CompleteMultipartUpload") {
        return None;
    }
    text.split("<Part>")
        .skip(1)
        .map(|p| {
            let number = between(p, "<PartNumber>", "</PartNumber>")?
                .trim()
                .parse()
                .ok()?;
            let etag = between(p, "<ETag>", "</ETag>")?.replace("&quot;", "\"");
            Some((number, etag))
        })
        .collect()
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let len = s[start..].find(close)?;
    Some(&s[start..start + len])
}

/// `DELETE /bucket/key?uploadId=ID`: the parts are dropped.
pub(super) async fn abort(
    counters: &Counters,
    (bucket, key): (&str, &str),
    id: &str,
) -> Response<Full<Bytes>> {
    let mut uploads = counters.uploads.lock().await;
    if !uploads
        .get(id)
        .is_some_and(|u| u.bucket == bucket && u.key == key)
    {
        return no_such_upload();
    }
    uploads.remove(id);
    reply(StatusCode::NO_CONTENT, String::new())
}

/// `PUT /bucket/key` with `x-goog-copy-source: bucket/key`: the emulator's JSON `copyTo`.
pub(super) async fn copy(
    w: &Write<'_>,
    (bucket, key): (&str, &str),
    source: &str,
) -> Result<Response<Full<Bytes>>> {
    let Some((src_bucket, src_key)) = source.trim_start_matches('/').split_once('/') else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Invalid copy source.",
        ));
    };
    w.locked(|| async {
        // Keys stay percent-encoded (as they came): the JSON API takes them so in its path.
        let target =
            format!("/storage/v1/b/{src_bucket}/o/{src_key}/copyTo/b/{bucket}/o/{key}");
        let mut req = Request::post(target)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::new()))?;
        let resp = send(w.upstream, &mut req).await?;
        if !resp.status().is_success() {
            return Ok(resp);
        }
        let (_, body) = resp.into_parts();
        let meta: serde_json::Value = serde_json::from_slice(&body.collect().await?.to_bytes())?;
        let mut r = reply(
            StatusCode::OK,
            format!(
                "<?xml version='1.0' encoding='UTF-8'?><CopyObjectResult><LastModified>{}</LastModified><ETag>\"{}\"</ETag></CopyObjectResult>",
                meta["updated"].as_str().unwrap_or_default(),
                meta["etag"].as_str().unwrap_or_default()
            ),
        );
        put_headers(&mut r, &meta)?;
        Ok(r)
    })
    .await
}

/// A part's ETag: a digest of its bytes, as GCS's (an MD5) is.
fn content_hash(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
