//! Counting the write calls each flow makes, at the stand-ins: moto's request recorder (IAM,
//! STS, S3, EKS), the registry's access log, and the Kubernetes stand-in's counters.
//!
//! A write is a request that creates, changes or deletes something, or could: IAM and STS
//! (query protocol) every `Action` but `Get*`, `List*` and `Describe*`; S3 `PUT`, `POST` and
//! `DELETE`; EKS (REST) every method but `GET` and `HEAD`; the registry `PUT`, `POST`, `PATCH`
//! and `DELETE` on `/v2/`; Kubernetes every `POST`, `PUT`, `PATCH` and `DELETE` on a resource,
//! a no-op server-side apply included (the stand-in counts them).

use base64::Engine as _;
use serde_json::Value;

/// Write requests by service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Writes {
    /// IAM and STS.
    pub(crate) iam: u64,
    pub(crate) s3: u64,
    pub(crate) eks: u64,
    pub(crate) registry: u64,
    pub(crate) kubernetes: u64,
    /// AWS requests to a service none of the above (none is expected).
    pub(crate) other_aws: u64,
    /// Not writes: the AWS requests that only read, for the record.
    pub(crate) aws_reads: u64,
}

impl Writes {
    /// Every write request (reads left out).
    pub(crate) fn total(&self) -> u64 {
        self.iam + self.s3 + self.eks + self.registry + self.kubernetes + self.other_aws
    }

    /// Adds the writes among moto's recorded requests (one JSON object per line).
    pub(crate) fn add_moto_recording(&mut self, recording: &str) {
        for line in recording.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(record) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let Some((service, write)) = classify_aws(&record) else {
                continue;
            };
            if !write {
                self.aws_reads += 1;
                continue;
            }
            match service {
                AwsService::Iam | AwsService::Sts => self.iam += 1,
                AwsService::S3 => self.s3 += 1,
                AwsService::Eks => self.eks += 1,
                AwsService::Other(_) => self.other_aws += 1,
            }
        }
    }
}

/// The AWS service a request was signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AwsService {
    Iam,
    Sts,
    S3,
    Eks,
    Other(String),
}

/// The service of one of moto's recorded requests (from its SigV4 credential scope) and
/// whether it is a write; `None` for moto's own API and unsigned requests.
pub(crate) fn classify_aws(record: &Value) -> Option<(AwsService, bool)> {
    let method = record.get("method")?.as_str()?.to_ascii_uppercase();
    let url = record.get("url").and_then(Value::as_str).unwrap_or("");
    if url_path(url).starts_with("/moto-api") {
        return None;
    }
    let authorization = header(record, "authorization")?;
    let service = signing_service(authorization)?;
    let service = match service {
        "iam" => AwsService::Iam,
        "sts" => AwsService::Sts,
        "s3" => AwsService::S3,
        "eks" => AwsService::Eks,
        other => AwsService::Other(other.to_owned()),
    };
    let write = match service {
        AwsService::Iam | AwsService::Sts => {
            let action = query_action(url)
                .map(str::to_owned)
                .or_else(|| query_action(&body_text(record)).map(str::to_owned))
                .unwrap_or_default();
            !["Get", "List", "Describe"]
                .iter()
                .any(|read| action.starts_with(read))
        }
        AwsService::S3 => matches!(method.as_str(), "PUT" | "POST" | "DELETE"),
        AwsService::Eks | AwsService::Other(_) => !matches!(method.as_str(), "GET" | "HEAD"),
    };
    Some((service, write))
}

/// `AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, ...` → `SERVICE`.
fn signing_service(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    scope.split('/').nth(3)
}

fn header<'a>(record: &'a Value, name: &str) -> Option<&'a str> {
    record
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

fn url_path(url: &str) -> &str {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match without_scheme.find('/') {
        Some(i) => &without_scheme[i..],
        None => "/",
    }
}

fn body_text(record: &Value) -> String {
    let body = record.get("body").and_then(Value::as_str).unwrap_or("");
    if record.get("body_encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    } else {
        body.to_owned()
    }
}

/// The `Action` of a query-protocol request, from a URL's query or a form body.
fn query_action(text: &str) -> Option<&str> {
    let query = text.split_once('?').map_or(text, |(_, q)| q);
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .filter(|a| !a.is_empty())
}

/// The write requests in lines of the registry's access log
/// (`... "PUT /v2/NAME/manifests/TAG HTTP/1.1" 201 ...`).
pub(crate) fn registry_writes(log: &str) -> u64 {
    log.lines()
        .filter(|line| {
            ["PUT", "POST", "PATCH", "DELETE"]
                .iter()
                .any(|m| line.contains(&format!("\"{m} /v2/")))
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn signed(service: &str) -> Value {
        json!({"Authorization": format!(
            "AWS4-HMAC-SHA256 Credential=testing/20261127/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
        )})
    }

    fn encoded(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn iam_reads_and_writes_by_action() {
        let create = json!({"method": "POST", "url": "http://127.0.0.1:5000/", "headers": signed("iam"),
            "body": encoded("Action=CreateRole&Version=2010-05-08&RoleName=r"), "body_encoded": true});
        let get = json!({"method": "POST", "url": "http://127.0.0.1:5000/", "headers": signed("iam"),
            "body": "Action=GetRole&Version=2010-05-08&RoleName=r", "body_encoded": false});
        let list = json!({"method": "POST", "url": "http://127.0.0.1:5000/", "headers": signed("iam"),
            "body": encoded("Version=2010-05-08&Action=ListAttachedRolePolicies"), "body_encoded": true});
        let sts = json!({"method": "POST", "url": "http://127.0.0.1:5000/", "headers": signed("sts"),
            "body": encoded("Action=GetCallerIdentity&Version=2011-06-15"), "body_encoded": true});
        assert_eq!(classify_aws(&create), Some((AwsService::Iam, true)));
        assert_eq!(classify_aws(&get), Some((AwsService::Iam, false)));
        assert_eq!(classify_aws(&list), Some((AwsService::Iam, false)));
        assert_eq!(classify_aws(&sts), Some((AwsService::Sts, false)));
    }

    #[test]
    fn s3_and_eks_by_method_and_moto_api_ignored() {
        let put = json!({"method": "PUT", "url": "http://127.0.0.1:5000/bucket/key.py", "headers": signed("s3")});
        let head = json!({"method": "HEAD", "url": "http://127.0.0.1:5000/bucket/key.py", "headers": signed("s3")});
        let describe = json!({"method": "GET", "url": "http://127.0.0.1:5000/clusters/c", "headers": signed("eks")});
        let associate = json!({"method": "POST", "url": "http://127.0.0.1:5000/clusters/c/pod-identity-associations", "headers": signed("eks")});
        let moto = json!({"method": "POST", "url": "http://127.0.0.1:5000/moto-api/reset", "headers": signed("s3")});
        let unsigned =
            json!({"method": "PUT", "url": "http://127.0.0.1:5000/bucket/k", "headers": {}});
        assert_eq!(classify_aws(&put), Some((AwsService::S3, true)));
        assert_eq!(classify_aws(&head), Some((AwsService::S3, false)));
        assert_eq!(classify_aws(&describe), Some((AwsService::Eks, false)));
        assert_eq!(classify_aws(&associate), Some((AwsService::Eks, true)));
        assert_eq!(classify_aws(&moto), None);
        assert_eq!(classify_aws(&unsigned), None);
    }

    #[test]
    fn a_recording_adds_up_by_service() {
        let lines = [
            json!({"method": "POST", "url": "http://h/", "headers": signed("iam"), "body": "Action=CreatePolicy", "body_encoded": false}),
            json!({"method": "POST", "url": "http://h/", "headers": signed("iam"), "body": "Action=AttachRolePolicy", "body_encoded": false}),
            json!({"method": "POST", "url": "http://h/", "headers": signed("iam"), "body": "Action=GetPolicy", "body_encoded": false}),
            json!({"method": "PUT", "url": "http://h/b/k", "headers": signed("s3")}),
            json!({"method": "POST", "url": "http://h/", "headers": signed("sqs"), "body": "Action=SendMessage", "body_encoded": false}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let mut writes = Writes::default();
        writes.add_moto_recording(&format!("{text}not json\n\n"));
        assert_eq!(
            writes,
            Writes {
                iam: 2,
                s3: 1,
                other_aws: 1,
                aws_reads: 1,
                ..Writes::default()
            }
        );
        assert_eq!(writes.total(), 4);
    }

    #[test]
    fn registry_access_log_writes() {
        let log = r#"127.0.0.1 - - [27/Nov/2026:09:46:23 +0000] "POST /v2/bench/cli-0/blobs/uploads/ HTTP/1.1" 202 0 "" "docker/20.10.24"
127.0.0.1 - - [27/Nov/2026:09:46:23 +0000] "PATCH /v2/bench/cli-0/blobs/uploads/abc HTTP/1.1" 202 0 "" "docker/20.10.24"
127.0.0.1 - - [27/Nov/2026:09:46:23 +0000] "PUT /v2/bench/cli-0/blobs/uploads/abc?digest=sha256:1 HTTP/1.1" 201 0 "" "docker/20.10.24"
127.0.0.1 - - [27/Nov/2026:09:46:23 +0000] "HEAD /v2/bench/cli-0/blobs/sha256:2 HTTP/1.1" 200 0 "" "docker/20.10.24"
127.0.0.1 - - [27/Nov/2026:09:46:23 +0000] "PUT /v2/bench/cli-0/manifests/sha256-3 HTTP/1.1" 201 0 "" "docker/20.10.24"
127.0.0.1 - - [27/Nov/2026:09:46:24 +0000] "HEAD /v2/bench/tool-0/manifests/sha256-3 HTTP/1.1" 200 735 "" "flink-eks-image-builder/0.1.0"
time="2026-11-27T09:12:13Z" level=info msg="response completed" http.request.method=PUT http.request.uri="/v2/bench/cli-0/manifests/sha256-3"
"#;
        assert_eq!(registry_writes(log), 4);
        assert_eq!(registry_writes(""), 0);
    }
}
