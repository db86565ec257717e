#!/usr/bin/env bash
# A first proof on the local cluster (cluster.sh up): airlock's gate image, imported from Docker into
# the cluster's containerd without a registry, applies default-deny egress rules in a Pod's network
# namespace from an init container with NET_ADMIN; the agent container (no capabilities, non-root,
# read-only root) then reaches the one allowed endpoint (the API's ClusterIP) and not a decoy Pod
# this script starts on the cluster's own pod network, which counts what reaches it. A Pod without
# the gate reaches the decoy (the positive control). Exit 0 when all of that held.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K=${AIRLOCK_K8S_DIR:-$(cd "$here/../.." && pwd)/.cache/k8s}
export KUBECONFIG=$K/run/admin.kubeconfig
log() { printf '[airlock k8s] %s\n' "$*" >&2; }
gate=$(docker images airlock/gate --format '{{.Repository}}:{{.Tag}}' | head -n1)
[ -n "$gate" ] || { log "no airlock/gate image: run npx airlock build first"; exit 1; }
ctr="ctr -a $K/run/containerd/containerd.sock -n k8s.io"
$ctr images ls -q | grep -q "$gate" || { log "importing $gate"; docker save "$gate" | $ctr images import - >/dev/null; }
api=$(kubectl get svc kubernetes -o jsonpath='{.spec.clusterIP}')
kubectl create namespace airlock-smoke --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n airlock-smoke delete pod gated open decoy --ignore-not-found --wait=true >/dev/null
cat <<EOF | kubectl apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: { name: decoy, namespace: airlock-smoke, labels: { dev.airlock.managed: "true", dev.airlock.role: smoke } }
spec:
  automountServiceAccountToken: false
  containers:
  - name: decoy
    image: docker.io/$gate
    imagePullPolicy: Never
    command: ["node", "-e", "require('net').createServer((s) => { console.log('HIT ' + s.remoteAddress); s.end(); }).listen(8080, () => console.log('decoy up'))"]
EOF
kubectl -n airlock-smoke wait --for=condition=Ready pod/decoy --timeout=60s >/dev/null
decoy=$(kubectl -n airlock-smoke get pod decoy -o jsonpath='{.status.podIP}')
cat <<EOF | kubectl apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata:
  name: gated
  namespace: airlock-smoke
  labels: { dev.airlock.managed: "true", dev.airlock.role: smoke }
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  initContainers:
  - name: gate
    image: docker.io/$gate
    imagePullPolicy: Never
    command: ["sh", "-c", "iptables -P OUTPUT DROP && iptables -A OUTPUT -o lo -j ACCEPT && iptables -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT && iptables -A OUTPUT -d $api/32 -p tcp --dport 443 -j ACCEPT && iptables -A OUTPUT -p tcp -j REJECT --reject-with tcp-reset && iptables -A OUTPUT -j REJECT"]
    securityContext: { capabilities: { add: [NET_ADMIN, NET_RAW], drop: [ALL] }, runAsUser: 0 }
  containers:
  - name: agent
    image: docker.io/$gate
    imagePullPolicy: Never
    command: ["sh", "-c", "for t in $api:443 $decoy:8080; do if timeout 3 bash -c \"exec 3<>/dev/tcp/\${t%:*}/\${t#*:}\" 2>/dev/null; then echo \"\$t OPEN\"; else echo \"\$t BLOCKED\"; fi; done; iptables -F 2>&1 | head -n1"]
    securityContext: { capabilities: { drop: [ALL] }, runAsUser: 10001, runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true }
    resources: { limits: { memory: 64Mi, cpu: 500m } }
EOF
wait_done() {
  for _ in $(seq 1 60); do
    phase=$(kubectl -n airlock-smoke get pod "$1" -o jsonpath='{.status.phase}' 2>/dev/null || true)
    { [ "$phase" = Succeeded ] || [ "$phase" = Failed ]; } && return 0
    sleep 1
  done
}
wait_done gated
out=$(kubectl -n airlock-smoke logs gated -c agent)
echo "gated: $out"
hits_gated=$(kubectl -n airlock-smoke logs decoy | grep -c HIT || true)
# Positive control: the same probe from a Pod without the gate reaches the decoy.
kubectl -n airlock-smoke run open --image="docker.io/$gate" --image-pull-policy=Never --restart=Never --labels=dev.airlock.managed=true \
  --command -- sh -c "timeout 3 bash -c 'exec 3<>/dev/tcp/$decoy/8080' && echo OPEN || echo BLOCKED" >/dev/null
wait_done open
control=$(kubectl -n airlock-smoke logs open)
hits_total=$(kubectl -n airlock-smoke logs decoy | grep -c HIT || true)
echo "ungated: $control; decoy hits: $hits_gated from the gated Pod, $hits_total in all"
kubectl delete namespace airlock-smoke --wait=false >/dev/null
if echo "$out" | grep -q "^$api:443 OPEN" && echo "$out" | grep -q "^$decoy:8080 BLOCKED" && echo "$out" | grep -q "Permission denied\|not permitted\|you must be root" \
  && [ "$hits_gated" = 0 ] && [ "$control" = OPEN ] && [ "$hits_total" = 1 ]; then
  log "the init container's rules held in the Pod's namespace, and the agent could not change them"
else
  log "the gate did not hold"; exit 1
fi
