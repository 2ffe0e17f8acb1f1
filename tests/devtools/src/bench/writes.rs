//! Counting the write calls each flow makes, at the stand-ins: moto's request recorder (IAM,
//! STS, S3, EKS), the registry's access log, and the Kubernetes stand-in's counters.
//!
//! What a write is comes from the workspace tests' support library, so that the bench and the
//! end-to-end tests judge alike: [`AwsRequest::is_write`] (IAM and STS by their `Action`, every
//! one but `Get*`, `List*` and `Describe*`; S3 and EKS every method but `GET` and `HEAD`) and
//! [`RegistryRequest::is_write`] (`PUT`, `POST`, `PATCH` and `DELETE` on `/v2/`). Kubernetes:
//! every `POST`, `PUT`, `PATCH` and `DELETE` on a resource, a no-op server-side apply included
//! (the stand-in counts them).

use flink_eks_tests::{AwsRequest, AwsService, RegistryRequest};

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

    /// Adds the writes among moto's recorded requests, by service; unsigned requests and
    /// moto's own API are no AWS calls and count nowhere.
    pub(crate) fn add_aws(&mut self, requests: &[AwsRequest]) {
        for request in requests {
            let Some(service) = request.aws_service() else {
                continue;
            };
            if !request.is_write() {
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

    /// Adds the writes among the registry's logged requests.
    pub(crate) fn add_registry(&mut self, requests: &[RegistryRequest]) {
        self.registry += requests.iter().filter(|r| r.is_write()).count() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(method: &str, path: &str, service: Option<&str>, action: Option<&str>) -> AwsRequest {
        AwsRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            service: service.map(str::to_owned),
            access_key: service.map(|_| "testing".to_owned()),
            action: action.map(str::to_owned),
        }
    }

    fn registry(method: &str, path: &str) -> RegistryRequest {
        RegistryRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            status: 201,
        }
    }

    #[test]
    fn requests_add_up_by_service() {
        let requests = [
            aws("POST", "/", Some("iam"), Some("CreatePolicy")),
            aws("POST", "/", Some("iam"), Some("AttachRolePolicy")),
            aws("POST", "/", Some("iam"), Some("GetPolicy")),
            aws("POST", "/", Some("sts"), Some("AssumeRoleWithWebIdentity")),
            aws("PUT", "/b/k", Some("s3"), None),
            aws("HEAD", "/b/k", Some("s3"), None),
            aws(
                "POST",
                "/clusters/c/pod-identity-associations",
                Some("eks"),
                None,
            ),
            aws("POST", "/", Some("sqs"), Some("SendMessage")),
            // Neither reads nor writes of AWS: unsigned, and moto's own API.
            aws("PUT", "/b/k", None, None),
            aws("POST", "/moto-api/reset", Some("s3"), None),
        ];
        let mut writes = Writes::default();
        writes.add_aws(&requests);
        writes.add_registry(&[
            registry("POST", "/v2/bench/cli-0/blobs/uploads/"),
            registry("HEAD", "/v2/bench/cli-0/blobs/sha256:2"),
            registry("PUT", "/v2/bench/cli-0/manifests/sha256-3"),
        ]);
        writes.kubernetes = 2;
        assert_eq!(
            writes,
            Writes {
                iam: 3,
                s3: 1,
                eks: 1,
                registry: 2,
                kubernetes: 2,
                other_aws: 1,
                aws_reads: 2,
            }
        );
        assert_eq!(writes.total(), 10);
    }
}
