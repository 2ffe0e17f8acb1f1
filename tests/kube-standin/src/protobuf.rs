//! The one protobuf body the stand-in reads: an access review (`kubectl auth can-i` sends its
//! SelfSubjectAccessReview as `application/vnd.kubernetes.protobuf`). The Kubernetes envelope
//! is the magic `k8s\0` and a `runtime.Unknown` whose `raw` field holds the object; only the
//! fields of `authorization.k8s.io/v1` reviews are decoded, into the JSON the rest of the
//! server handles.

use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// One decoded field: its number and, for a length-delimited one, its bytes.
enum Field<'a> {
    Bytes(u32, &'a [u8]),
    Other,
}

fn varint(data: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *data.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn fields(data: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < data.len() {
        let key = varint(data, &mut at)?;
        let number = u32::try_from(key >> 3).ok()?;
        match key & 7 {
            0 => {
                varint(data, &mut at)?;
                out.push(Field::Other);
            }
            1 => {
                at += 8;
                out.push(Field::Other);
            }
            2 => {
                let len = usize::try_from(varint(data, &mut at)?).ok()?;
                let bytes = data.get(at..at.checked_add(len)?)?;
                at += len;
                out.push(Field::Bytes(number, bytes));
            }
            5 => {
                at += 4;
                out.push(Field::Other);
            }
            _ => return None,
        }
    }
    (at == data.len()).then_some(out)
}

fn strings_of(data: &[u8], names: &[(u32, &str)]) -> Option<Map<String, Value>> {
    let mut map = Map::new();
    for field in fields(data)? {
        if let Field::Bytes(n, bytes) = field
            && let Some((_, name)) = names.iter().find(|(k, _)| *k == n)
        {
            let text = std::str::from_utf8(bytes).ok()?;
            map.insert((*name).to_owned(), json!(text));
        }
    }
    Some(map)
}

/// Decodes an access review sent as protobuf into its JSON form.
pub(crate) fn decode_review(body: &[u8], kind: &str) -> Result<Value, ApiError> {
    decode(body, kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "the protobuf body is not a {kind} the stand-in can read"
        ))
    })
}

fn decode(body: &[u8], kind: &str) -> Option<Value> {
    let unknown = body.strip_prefix(b"k8s\0")?;
    let raw = fields(unknown)?.into_iter().find_map(|f| match f {
        Field::Bytes(2, raw) => Some(raw),
        _ => None,
    })?;
    let mut spec = Map::new();
    for field in fields(raw)? {
        // SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview: 2 = spec.
        let Field::Bytes(2, spec_bytes) = field else {
            continue;
        };
        for item in fields(spec_bytes)? {
            match item {
                Field::Bytes(1, attrs) => {
                    let map = strings_of(
                        attrs,
                        &[
                            (1, "namespace"),
                            (2, "verb"),
                            (3, "group"),
                            (4, "version"),
                            (5, "resource"),
                            (6, "subresource"),
                            (7, "name"),
                        ],
                    )?;
                    spec.insert("resourceAttributes".into(), Value::Object(map));
                }
                Field::Bytes(2, attrs) => {
                    let map = strings_of(attrs, &[(1, "path"), (2, "verb")])?;
                    spec.insert("nonResourceAttributes".into(), Value::Object(map));
                }
                Field::Bytes(3, user) if kind != "SelfSubjectAccessReview" => {
                    let user = std::str::from_utf8(user).ok()?;
                    spec.insert("user".into(), json!(user));
                }
                Field::Bytes(4, group) if kind != "SelfSubjectAccessReview" => {
                    let group = std::str::from_utf8(group).ok()?;
                    let groups = spec.entry("groups").or_insert_with(|| json!([]));
                    groups.as_array_mut()?.push(json!(group));
                }
                _ => {}
            }
        }
    }
    Some(json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"creationTimestamp": null},
        "spec": spec,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2, u8::try_from(bytes.len()).unwrap_or(0)];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn a_self_review_from_kubectl_decodes() {
        let attrs = [field(1, b"default"), field(2, b"create"), field(5, b"pods")].concat();
        let spec = field(1, &attrs);
        let review = [field(1, b""), field(2, &spec), field(3, b"")].concat();
        let type_meta = [
            field(1, b"authorization.k8s.io/v1"),
            field(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let unknown = [field(1, &type_meta), field(2, &review), field(4, b"")].concat();
        let body = [b"k8s\0".as_slice(), &unknown].concat();
        let decoded = decode_review(&body, "SelfSubjectAccessReview").unwrap_or_default();
        assert_eq!(
            decoded["spec"]["resourceAttributes"],
            json!({"namespace": "default", "verb": "create", "resource": "pods"})
        );
        assert!(decode_review(b"k8s\0\xff", "SelfSubjectAccessReview").is_err());
    }
}
