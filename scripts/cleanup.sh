#!/usr/bin/env bash
# Tear down an AegisTickets environment, in the order that leaves nothing behind (docs/deploy.md, "Tear down"):
#   1. helm uninstall the app: its Ingress goes, so the AWS Load Balancer Controller deletes the ALB and its
#      target groups; the chart's hook objects (ExternalSecret, ClusterSecretStore, ...) and the namespace go too
#   2. wait until no ALB or target group of the cluster is left (Terraform cannot delete the VPC while an ALB,
#      its security groups or network interfaces still use it)
#   3. helm uninstall kube-prometheus-stack, External Secrets and the Load Balancer Controller
#   4. delete the images in ECR (a repository with images cannot be destroyed unless force_delete is set)
#   5. terraform destroy of the environment: terraform/ with envs/<env>.tfvars and envs/<env>.backend.hcl
# It asks you to type the cluster name first; --yes skips that question (automation).
#
# usage: scripts/cleanup.sh [--yes] [--env dev|prod] [--namespace aegistickets] [--release aegistickets]
# needs: aws (credentials for the account), kubectl + helm (kubeconfig for the cluster), terraform, jq
set -euo pipefail

env_name=dev
namespace=aegistickets
release=aegistickets
assume_yes=false
timeout_s=${CLEANUP_TIMEOUT_SECONDS:-900}

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --yes|-y) assume_yes=true ;;
    --env) env_name=${2:?--env needs a value}; shift ;;
    --namespace) namespace=${2:?--namespace needs a value}; shift ;;
    --release) release=${2:?--release needs a value}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

here=$(cd "$(dirname "$0")/.." && pwd)
tf_dir="$here/terraform"
var_file="envs/$env_name.tfvars"
backend_file="envs/$env_name.backend.hcl"
for file in "$var_file" "$backend_file"; do
  [ -f "$tf_dir/$file" ] || { echo "no $tf_dir/$file (copied from $file.example, docs/deploy.md 1.4)" >&2; exit 2; }
done
for tool in aws kubectl helm terraform jq; do
  command -v "$tool" >/dev/null 2>&1 || { echo "cleanup needs $tool on PATH" >&2; exit 2; }
done
# The environment's own data directory (docs/deploy.md 1.4), initialised against its own state: the outputs
# below and the destroy then can only be this environment's.
export TF_DATA_DIR=".terraform/$env_name"
terraform -chdir="$tf_dir" init -input=false -reconfigure -backend-config="$backend_file" >/dev/null

say() { printf '\n=== %s ===\n' "$*"; }
tf_output() { terraform -chdir="$tf_dir" output -raw "$1"; }

cluster=$(tf_output cluster_name)
region=$(tf_output region)
repo_url=$(tf_output ecr_repository_url)
repo_name=${repo_url#*/}
vpc_id=$(tf_output vpc_id)

cat <<MSG
This deletes the AegisTickets environment "$env_name" for good:
  cluster $cluster (region $region, VPC $vpc_id), the release $release in namespace $namespace,
  the database and its secrets, the media bucket, and every image in ECR repository $repo_name.
MSG
if [ "$assume_yes" != true ]; then
  if [ ! -t 0 ]; then echo "no terminal to confirm on: pass --yes to run unattended" >&2; exit 2; fi
  read -r -p "Type the cluster name ($cluster) to confirm: " answer
  [ "$answer" = "$cluster" ] || { echo "confirmation did not match: nothing deleted" >&2; exit 1; }
fi

aws eks update-kubeconfig --region "$region" --name "$cluster" >/dev/null

say "1. the app (release $release, namespace $namespace)"
if helm status "$release" -n "$namespace" >/dev/null 2>&1; then
  helm uninstall "$release" -n "$namespace" --wait --timeout 10m
fi
# Hook objects are not part of the release: remove them by the chart's instance label.
kubectl delete externalsecrets.external-secrets.io,serviceaccounts,jobs -n "$namespace" \
  -l "app.kubernetes.io/instance=$release" --ignore-not-found --wait=true || true
kubectl delete clustersecretstores.external-secrets.io -l "app.kubernetes.io/instance=$release" \
  --ignore-not-found --wait=true || true
kubectl delete namespace "$namespace" --ignore-not-found --wait=true --timeout=10m

say "2. waiting for the cluster's ALBs and target groups to be deleted (up to ${timeout_s}s)"
lb_left() {
  aws elbv2 describe-load-balancers --region "$region" --output json |
    jq -r --arg vpc "$vpc_id" '.LoadBalancers[] | select(.VpcId == $vpc) | .LoadBalancerArn'
}
tg_left() {
  aws elbv2 describe-target-groups --region "$region" --output json |
    jq -r --arg vpc "$vpc_id" '.TargetGroups[] | select(.VpcId == $vpc) | .TargetGroupArn'
}
deadline=$((SECONDS + timeout_s))
while :; do
  lbs=$(lb_left); tgs=$(tg_left)
  [ -z "$lbs" ] && [ -z "$tgs" ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "still present after ${timeout_s}s (delete them, then re-run):" >&2
    printf '%s\n' "$lbs" "$tgs" >&2
    exit 1
  fi
  echo "  $(printf '%s' "$lbs" | grep -c . || true) load balancer(s), $(printf '%s' "$tgs" | grep -c . || true) target group(s) left"
  sleep 15
done
echo "no ALB or target group left in $vpc_id"

say "3. cluster add-ons"
for addon in "kube-prometheus-stack monitoring" "external-secrets external-secrets" \
             "aws-load-balancer-controller kube-system"; do
  read -r name ns <<<"$addon"
  if helm status "$name" -n "$ns" >/dev/null 2>&1; then helm uninstall "$name" -n "$ns" --wait --timeout 10m; fi
done

say "4. images in ECR repository $repo_name"
while :; do
  ids=$(aws ecr list-images --region "$region" --repository-name "$repo_name" --max-items 100 --output json |
        jq -c '.imageIds')
  if [ "$ids" = "[]" ] || [ "$ids" = "null" ]; then break; fi
  aws ecr batch-delete-image --region "$region" --repository-name "$repo_name" --image-ids "$ids" >/dev/null
done
echo "repository $repo_name is empty"

say "5. terraform destroy ($tf_dir, $var_file)"
destroy_args=(-input=false -var-file="$var_file")
[ "$assume_yes" = true ] && destroy_args+=(-auto-approve)
terraform -chdir="$tf_dir" destroy "${destroy_args[@]}"

echo
echo "Environment $env_name is gone. The Terraform state bucket and lock table (bootstrap) are kept on purpose."
