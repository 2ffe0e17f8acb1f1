#!/usr/bin/env bash
# The deployment done by hand, with the CLIs users run today, as `cargo xtask bench` times it
# against `cargo xtask deploy`: docker build and push; the aws CLI's create-policy,
# create-role, attach-role-policy, get-role, list-attached-role-policies and s3 cp; kubectl
# annotate, apply of the job's Role and RoleBinding, apply --server-side and wait.
#
# Usage: cli-flow.sh [all|image]     (image: only the docker build and push)
#
# Inputs, from the environment:
#   ARTIFACTS        what `cargo xtask deploy --dry-run --out DIR` wrote: build-context.tar.gz,
#                    iam-policy.json, trust-policy.json (ACCOUNT_ID and CLUSTER_OIDC_ID to fill
#                    in), role.json and rolebinding.json (the operator chart's job rules for
#                    the service account), flinkdeployment.yaml. They stand for the files the write-up has users
#                    write by hand, so both flows send the same documents.
#   IMAGE            repository:tag to build and push
#   SCRIPT, S3_URI   the PyFlink script and where it goes
#   CLUSTER, ROLE, POLICY, NAMESPACE, SERVICE_ACCOUNT, NAME
#   AWS, KUBECTL, DOCKER   the commands (default: aws, kubectl, docker)
#
# The aws CLI is not idempotent: on a rerun, create-policy and create-role fail with
# EntityAlreadyExists. This script is a careful user's: it asks first (get-policy, get-role)
# and creates only what is missing, so that rerunning it after a change works. Every other
# step is sent again on every run, as the write-up does: the push, attach-role-policy, the
# upload, the annotation, the apply. `kubectl wait` on lifecycleState=STABLE returns at once
# when the previous generation is still STABLE, so after a change it may not wait for the new
# one (which makes this flow faster, not slower).
set -euo pipefail

mode=${1:-all}
aws=${AWS:-aws}
kubectl=${KUBECTL:-kubectl}
docker=${DOCKER:-docker}
: "${ARTIFACTS:?}" "${IMAGE:?}"

# 1. The image: build the rendered context, push it.
"$docker" build --quiet --tag "$IMAGE" - < "$ARTIFACTS/build-context.tar.gz" > /dev/null
"$docker" push "$IMAGE" > /dev/null
if [ "$mode" = image ]; then
    exit 0
fi
: "${SCRIPT:?}" "${S3_URI:?}" "${CLUSTER:?}" "${ROLE:?}" "${POLICY:?}" "${NAMESPACE:?}" \
    "${SERVICE_ACCOUNT:?}" "${NAME:?}"

# 2. IAM: the policy, the role trusting the cluster's OIDC issuer for one service account.
account=$("$aws" sts get-caller-identity --query Account --output text)
issuer=$("$aws" eks describe-cluster --name "$CLUSTER" \
    --query cluster.identity.oidc.issuer --output text)
trust=$(mktemp)
trap 'rm -f "$trust"' EXIT
sed -e "s|ACCOUNT_ID|$account|g" -e "s|CLUSTER_OIDC_ID|${issuer##*/}|g" \
    "$ARTIFACTS/trust-policy.json" > "$trust"
policy_arn="arn:aws:iam::$account:policy/$POLICY"
"$aws" iam get-policy --policy-arn "$policy_arn" > /dev/null 2>&1 ||
    "$aws" iam create-policy --policy-name "$POLICY" \
        --policy-document "file://$ARTIFACTS/iam-policy.json" > /dev/null
"$aws" iam get-role --role-name "$ROLE" > /dev/null 2>&1 ||
    "$aws" iam create-role --role-name "$ROLE" \
        --assume-role-policy-document "file://$trust" > /dev/null
"$aws" iam attach-role-policy --role-name "$ROLE" --policy-arn "$policy_arn"
role_arn=$("$aws" iam get-role --role-name "$ROLE" --query Role.Arn --output text)
attached=$("$aws" iam list-attached-role-policies --role-name "$ROLE" \
    --query "AttachedPolicies[?PolicyArn=='$policy_arn'].PolicyArn" --output text)
if [ "$attached" != "$policy_arn" ]; then
    echo "the policy $policy_arn is not attached to $ROLE" >&2
    exit 1
fi

# 3. The script to S3.
"$aws" s3 cp --quiet "$SCRIPT" "$S3_URI"

# 4. The service account's role annotation.
"$kubectl" annotate serviceaccount --namespace "$NAMESPACE" "$SERVICE_ACCOUNT" \
    "eks.amazonaws.com/role-arn=$role_arn" --overwrite > /dev/null

# 5. What the JobManager may do as the service account (its ConfigMaps, the TaskManager pods):
#    the operator chart grants it only to its own `flink` account.
"$kubectl" apply -f "$ARTIFACTS/role.json" -f "$ARTIFACTS/rolebinding.json" > /dev/null

# 6. The FlinkDeployment, then wait until the operator calls it STABLE.
"$kubectl" apply --server-side -f "$ARTIFACTS/flinkdeployment.yaml" > /dev/null
"$kubectl" wait --namespace "$NAMESPACE" --for=jsonpath='{.status.lifecycleState}'=STABLE \
    "flinkdeployment/$NAME" --timeout=300s > /dev/null
