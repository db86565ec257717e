#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for airlock's Kubernetes tests: etcd,
# the control plane, a kubelet and kube-proxy from the binary scripts/k8s/build.sh makes, and a
# containerd of its own (its own root, state, socket and runc root: nothing of Docker's is used or
# changed). No registry: images are imported into its containerd.
#
#   bash scripts/k8s/cluster.sh up       idempotent; prints the kubeconfig path
#   bash scripts/k8s/cluster.sh down     stops everything it started and removes what it added to the host
#   bash scripts/k8s/cluster.sh status
#
# AIRLOCK_K8S_CNI=cilium (for scripts/k8s/netpol.sh) runs it with Cilium instead of the bridge plugin
# and kube-proxy, so that NetworkPolicy is enforced: Cilium built by build-cilium.sh, clang-19 to
# compile its BPF programs, a private bpffs and a veth pair of its own as its device (nothing is
# attached to the host's interfaces). One cluster at a time: down before switching.
#
# Needs root. Host side effects (undone by down): a bridge k8sbr0 with CNI's iptables chains, cgroups
# under /k8s1, kube-proxy's and the kubelet's KUBE-* chains (KUBE-FIREWALL would drop the host's
# loopback connections from containers), and the kubelet's sysctls (restored from what up recorded).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K=${AIRLOCK_K8S_DIR:-$(cd "$here/../.." && pwd)/.cache/k8s}
B=$K/bin
CNI=${AIRLOCK_K8S_CNI:-bridge}
# Each variant has its own run folder (state, certificates, logs, airlock.env).
if [ "$CNI" = cilium ]; then R=$K/run-cilium; else R=$K/run; fi
P=$R/pki
log() { printf '[airlock k8s] %s\n' "$*" >&2; }
NODE=$(hostname | tr '[:upper:]' '[:lower:]')
NODEIP=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
[ -n "$NODEIP" ] || NODEIP=$(hostname -I | awk '{print $1}')
export KUBECONFIG=$R/admin.kubeconfig
FWD_COMMENT="airlock: runner forwarders to the host loopback"
case "$CNI" in bridge | cilium) ;; *) log "AIRLOCK_K8S_CNI is bridge or cilium, not $CNI"; exit 2 ;; esac
C=$K/cilium
SYSCTLS="net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.conf.all.route_localnet"

ready() { kubectl get node "$NODE" 2>/dev/null | grep -qw Ready; }

bg() { local name=$1; shift; nohup "$@" >"$R/log/$name.log" 2>&1 & echo $! >"$R/$name.pid"; }

running() { [ -f "$R/$1.pid" ] && kill -0 "$(cat "$R/$1.pid")" 2>/dev/null; }

kubeconfig() { # name cert
  cat >"$R/$1.kubeconfig" <<EOK
apiVersion: v1
kind: Config
clusters:
- cluster: {certificate-authority: $P/ca.crt, server: "https://127.0.0.1:6443"}
  name: local
users:
- name: $1
  user: {client-certificate: $P/$2.crt, client-key: $P/$2.key}
contexts:
- context: {cluster: local, user: $1}
  name: local
current-context: local
EOK
}

# Cilium as plain processes (../shared/design/kubernetes-cluster.md has the recipe and why each flag).
up_cilium() {
  mkdir -p "$R/cilium-lib" "$R/bpffs" "$R/clang-bin"
  local src; src=$(cd "$C/build" && go list -m -f '{{.Dir}}' github.com/cilium/cilium)
  [ -d "$R/cilium-lib/bpf" ] || { cp -r "$src/bpf" "$R/cilium-lib/bpf"; chmod -R u+w "$R/cilium-lib"; }
  ln -sf /usr/bin/clang-19 "$R/clang-bin/clang"; ln -sf /usr/lib/llvm-19/bin/llc "$R/clang-bin/llc"
  grep -q " $R/bpffs " /proc/mounts || mount -t bpf bpf "$R/bpffs"
  # A veth pair of its own as Cilium's device, so that no BPF program is attached to the host's interfaces.
  ip link show airlockc0 >/dev/null 2>&1 || { ip link add airlockc0 type veth peer name airlockc1; ip addr add 192.168.251.1/30 dev airlockc0; }
  ip link set airlockc0 up; ip link set airlockc1 up
  local cg; cg=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
  running cilium-operator || bg cilium-operator "$C/bin/cilium-operator-generic" --k8s-kubeconfig-path="$R/admin.kubeconfig" --cluster-name=default --ipam=kubernetes \
    --operator-api-serve-addr=127.0.0.1:29234 --operator-prometheus-serve-addr= --enable-metrics=false --operator-pprof-port=0
  running cilium-agent || K8S_NODE_NAME=$NODE PATH=$R/clang-bin:$PATH bg cilium-agent "$C/bin/cilium-agent" --k8s-kubeconfig-path="$R/admin.kubeconfig" --cluster-name=default \
    --ipam=kubernetes --k8s-require-ipv4-pod-cidr=true --enable-ipv6=false --enable-ipv4=true \
    --routing-mode=native --ipv4-native-routing-cidr=10.244.0.0/16 --auto-direct-node-routes=false \
    --kube-proxy-replacement=false --enable-l7-proxy=false --enable-hubble=false --enable-envoy-config=false --external-envoy-proxy=false \
    --enable-health-checking=false --enable-endpoint-health-checking=false --agent-health-port=29879 --prometheus-serve-addr= \
    --enable-ipv4-masquerade=false --enable-xt-socket-fallback=false --cni-exclusive=false --policy-cidr-match-mode=nodes \
    --devices=airlockc0 --lib-dir="$R/cilium-lib" --bpf-root="$R/bpffs" --cgroup-root="$cg" \
    --enable-policy=default --enable-k8s-networkpolicy=true --identity-allocation-mode=crd
}

down_cilium() {
  stop_one cilium-agent
  stop_one cilium-operator
  ip link del cilium_host 2>/dev/null || true
  ip link del airlockc0 2>/dev/null || true
  for ipt in iptables iptables-legacy; do
    command -v "$ipt" >/dev/null 2>&1 || continue
    for table in filter nat mangle raw; do
      # The rules come shell-quoted (their comments have spaces): eval them back into words.
      "$ipt" -t "$table" -S 2>/dev/null | grep -E '^-A [A-Z_-]+ .*-j CILIUM' | sed 's/^-A/-D/' | while read -r rule; do
        eval "\"\$ipt\" -t \"\$table\" $rule" 2>/dev/null || true
      done || true
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '/^-N CILIUM/ {print $2}'); do "$ipt" -t "$table" -F "$chain" 2>/dev/null || true; "$ipt" -t "$table" -X "$chain" 2>/dev/null || true; done
    done
  done
  umount "$R/bpffs" 2>/dev/null || true
  rm -rf /var/run/cilium
}

up() {
  [ "$(id -u)" = 0 ] || { log "the cluster needs root"; exit 1; }
  if ready; then log "cluster already up"; echo "$KUBECONFIG"; return; fi
  # Another cluster (another clone's, say) holds the ports this one needs.
  for port in 6443 2379 10250; do
    if ss -ltnH "sport = :$port" 2>/dev/null | grep -q . && ! running kube-apiserver; then
      log "port $port is in use by another process (another cluster? bring it down first: bash <its clone>/scripts/k8s/cluster.sh down)"
      exit 1
    fi
  done
  bash "$here/build.sh"
  local missing=""
  command -v etcd >/dev/null || missing="$missing etcd-server"
  [ -x /usr/lib/cni/bridge ] || missing="$missing containernetworking-plugins"
  command -v conntrack >/dev/null || missing="$missing conntrack"
  command -v containerd >/dev/null || missing="$missing containerd"
  if [ "$CNI" = cilium ]; then
    bash "$here/build-cilium.sh"
    # Cilium 1.18 compiles its BPF programs with LLVM >= 18.1 (bookworm's default clang-14 is too old).
    command -v clang-19 >/dev/null || missing="$missing clang-19 llvm-19"
  fi
  command -v runc >/dev/null || missing="$missing runc"
  if [ -n "$missing" ]; then
    log "installing$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
  mkdir -p "$R/log" "$R/containerd" "$R/cni/net.d" "$R/kubelet" "$R/pod-logs"
  # What the kubelet changes on the host, to put back on down.
  [ -f "$R/sysctl.before" ] || for s in $SYSCTLS; do printf '%s=%s\n' "$s" "$(sysctl -n "$s" 2>/dev/null || echo -)"; done >"$R/sysctl.before"
  [ -f "$P/ca.crt" ] || sh "$here/gen-certs.sh" "$P" "$NODE" "$NODEIP"
  running etcd || bg etcd etcd --name k8s --data-dir "$R/etcd" --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster k8s=http://127.0.0.1:2380 --unsafe-no-fsync
  if [ "$CNI" = cilium ]; then
    # A CNI folder of its own: loopback and host-local from Debian, and Cilium's plugin.
    mkdir -p "$R/cni/bin"
    for p in loopback host-local; do ln -sf "/usr/lib/cni/$p" "$R/cni/bin/$p"; done
    ln -sf "$C/bin/cilium-cni" "$R/cni/bin/cilium-cni"
    sed "s#@R@#$R#g; s#@CNIBIN@#$R/cni/bin#g" "$here/containerd.toml.tmpl" >"$R/containerd.toml"
    printf '{"cniVersion": "0.3.1", "name": "cilium", "plugins": [{"type": "cilium-cni", "log-file": "%s/log/cilium-cni.log"}]}\n' "$R" >"$R/cni/net.d/05-cilium.conflist"
  else
  sed "s#@R@#$R#g; s#@CNIBIN@#/usr/lib/cni#g" "$here/containerd.toml.tmpl" >"$R/containerd.toml"
  cat >"$R/cni/net.d/10-bridge.conflist" <<'EOC'
{"cniVersion": "0.4.0", "name": "k8s-pod-net", "plugins": [
  {"type": "bridge", "bridge": "k8sbr0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "firewall"}]}
EOC
  # The pod bridge with its gateway address now, not at the first Pod: airlock's forwarders for
  # localhost endpoints listen on it before the Pod that uses them exists.
  ip link show k8sbr0 >/dev/null 2>&1 || ip link add k8sbr0 type bridge
  ip -4 addr show k8sbr0 | grep -q 10.244.0.1/ || ip addr add 10.244.0.1/24 dev k8sbr0
  ip link set k8sbr0 up
  fi
  running containerd || bg containerd containerd --config "$R/containerd.toml"
  local ctr="ctr -a $R/containerd/containerd.sock -n k8s.io"
  for _ in $(seq 1 60); do $ctr version >/dev/null 2>&1 && break; sleep 0.5; done
  $ctr images import "$K/pause.tar" >/dev/null
  for h in /sys/fs/cgroup/*/; do mkdir -p "$h/k8s1" 2>/dev/null || true; done
  if [ -d /sys/fs/cgroup/cpuset/k8s1 ]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >/sys/fs/cgroup/cpuset/k8s1/cpuset.cpus
    cat /sys/fs/cgroup/cpuset/cpuset.mems >/sys/fs/cgroup/cpuset/k8s1/cpuset.mems
  fi
  for _ in $(seq 1 60); do curl -fs http://127.0.0.1:2379/health >/dev/null && break; sleep 0.5; done
  for c in admin:admin kcm:kcm scheduler:scheduler kubelet:kubelet kube-proxy:kube-proxy; do kubeconfig "${c%%:*}" "${c##*:}"; done
  running kube-apiserver || bg kube-apiserver "$B/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
    --advertise-address="$NODEIP" --bind-address=0.0.0.0 --secure-port=6443 --service-cluster-ip-range=10.96.0.0/16 \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
    --kubelet-client-certificate="$P/admin.crt" --kubelet-client-key="$P/admin.key" --kubelet-certificate-authority="$P/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true
  # -f: /readyz answers 500 while RBAC's bootstrap is still running.
  for _ in $(seq 1 90); do curl -fsk --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" https://127.0.0.1:6443/readyz >/dev/null 2>&1 && break; sleep 1; done
  running kube-controller-manager || bg kube-controller-manager "$B/kube-controller-manager" \
    --kubeconfig="$R/kcm.kubeconfig" --authentication-kubeconfig="$R/kcm.kubeconfig" --authorization-kubeconfig="$R/kcm.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
    --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" --use-service-account-credentials=true \
    --allocate-node-cidrs=true --cluster-cidr=10.244.0.0/16 --node-cidr-mask-size=24 --service-cluster-ip-range=10.96.0.0/16 \
    --controllers='*,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller'
  running kube-scheduler || bg kube-scheduler "$B/kube-scheduler" --kubeconfig="$R/scheduler.kubeconfig" \
    --authentication-kubeconfig="$R/scheduler.kubeconfig" --authorization-kubeconfig="$R/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false
  cat >"$R/kubelet.yaml" <<EOK
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupRoot: /k8s1
containerRuntimeEndpoint: unix://$R/containerd/containerd.sock
tlsCertFile: $P/kubelet.crt
tlsPrivateKeyFile: $P/kubelet.key
clusterDomain: cluster.local
failSwapOn: false
failCgroupV1: false
imageGCHighThresholdPercent: 100
evictionHard: {}
staticPodPath: ""
serializeImagePulls: false
resolvConf: /etc/resolv.conf
podLogsDir: $R/pod-logs
# airlock's gate DNATs an agent's 127.0.0.1:PORT to the runner's forwarder (localhost endpoints).
allowedUnsafeSysctls: ["net.ipv4.conf.all.route_localnet"]
EOK
  running kubelet || bg kubelet "$B/kubelet" --config="$R/kubelet.yaml" --kubeconfig="$R/kubelet.kubeconfig" \
    --root-dir="$R/kubelet" --hostname-override="$NODE" --node-ip="$NODEIP" --pod-infra-container-image=registry.k8s.io/pause:3.10
  cat >"$R/kube-proxy.yaml" <<EOK
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $R/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: 10.244.0.0/16
conntrack: {maxPerCore: 0}
EOK
  [ "$CNI" = cilium ] && up_cilium
  [ "$CNI" = cilium ] || running kube-proxy || bg kube-proxy "$B/kube-proxy" --config="$R/kube-proxy.yaml" --hostname-override="$NODE"
  for _ in $(seq 1 120); do ready && break; sleep 1; done
  ready || { log "the node did not become Ready; logs in $R/log"; tail -n 20 "$R/log/kubelet.log" >&2; exit 1; }
  log "node $NODE Ready"
  # Where Pods reach this host: the bridge's gateway, or Cilium's router address (on cilium_host).
  HOSTADDR=10.244.0.1
  if [ "$CNI" = cilium ]; then
    for _ in $(seq 1 60); do
      HOSTADDR=$(ip -4 -o addr show cilium_host 2>/dev/null | awk '{print $4}' | cut -d/ -f1 || true)
      [ -n "$HOSTADDR" ] && break; sleep 0.5
    done
    [ -n "$HOSTADDR" ] || { log "cilium_host has no address; logs in $R/log"; exit 1; }
    echo "$HOSTADDR" >"$R/host-address"
  fi
  # airlock's forwarders (localhost endpoints) connect from the pod bridge's address to the host's
  # 127.0.0.1, which the kubelet's KUBE-FIREWALL drops: a root runner puts one ACCEPT for exactly that
  # (on lo) at the top of INPUT and OUTPUT before each run (runner/backends/kubernetes/host-loopback.ts).
  # What airlock's kubernetes backend needs to use this cluster (source it, or pass the values).
  cat >"$R/airlock.env" <<EOE
export KUBECONFIG=$KUBECONFIG
export AIRLOCK_K8S_LOAD_IMAGE='ctr -a $R/containerd/containerd.sock -n k8s.io images ls -q | grep -qx docker.io/{image} || docker save {image} | ctr -a $R/containerd/containerd.sock -n k8s.io images import -'
export AIRLOCK_K8S_HOST_ADDRESS=$HOSTADDR
EOE
  echo "$KUBECONFIG"
}

stop_one() {
  [ -f "$R/$1.pid" ] || return 0
  local p; p=$(cat "$R/$1.pid")
  kill "$p" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$p" 2>/dev/null || true
  rm -f "$R/$1.pid"
}

down() {
  [ -d "$R" ] || { log "no cluster here"; return; }
  if kubectl get --raw /readyz >/dev/null 2>&1; then
    # Let the kubelet tear the sandboxes down (CNI DEL, network namespaces) first.
    kubectl delete pods --all -A --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do [ -z "$(ctr -a "$R/containerd/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null)" ] && break; sleep 1; done
  fi
  for c in kube-proxy kubelet; do stop_one "$c"; done
  [ "$CNI" = cilium ] && down_cilium
  for c in kube-scheduler kube-controller-manager kube-apiserver; do stop_one "$c"; done
  local ctr="ctr -a $R/containerd/containerd.sock -n k8s.io"
  for t in $($ctr tasks ls -q 2>/dev/null); do $ctr tasks kill -s SIGKILL "$t" 2>/dev/null || true; done
  sleep 1
  for t in $($ctr tasks ls -q 2>/dev/null); do $ctr tasks delete -f "$t" 2>/dev/null || true; done
  stop_one containerd
  for p in $(pgrep -f "containerd-shim-runc-v2 -namespace k8s.io -address $R/containerd/containerd.sock" || true); do kill -9 "$p" 2>/dev/null || true; done
  stop_one etcd
  { grep -o " $R/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  [ -x "$B/kube-proxy" ] && "$B/kube-proxy" --cleanup >/dev/null 2>&1 || true
  ip link del k8sbr0 2>/dev/null || true
  for chain in OUTPUT:-o INPUT:-i; do
    for addr in 10.244.0.1 $(cat "$R/host-address" 2>/dev/null); do
      while iptables -D "${chain%%:*}" "${chain##*:}" lo -s "$addr/32" -d 127.0.0.0/8 -m comment --comment "$FWD_COMMENT" -j ACCEPT 2>/dev/null; do :; done
    done
  done
  iptables -D FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD 2>/dev/null || true
  for chain in CNI-FORWARD CNI-ADMIN; do iptables -F "$chain" 2>/dev/null || true; iptables -X "$chain" 2>/dev/null || true; done
  # The kubelet's own chains are not harmless to the rest of the host: KUBE-FIREWALL drops every
  # connection to 127.0.0.0/8 that does not come from the loopback (and is not DNATed).
  for ipt in iptables iptables-legacy ip6tables ip6tables-legacy; do
    command -v "$ipt" >/dev/null 2>&1 || continue
    for table in filter nat mangle; do
      "$ipt" -t "$table" -S 2>/dev/null | grep -E '^-A [A-Z-]+ .*-j KUBE-' | sed 's/^-A/-D/' | while read -r rule; do
        eval "\"\$ipt\" -t \"\$table\" $rule" 2>/dev/null || true
      done || true
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do "$ipt" -t "$table" -F "$chain" 2>/dev/null || true; done
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do "$ipt" -t "$table" -X "$chain" 2>/dev/null || true; done
    done
  done
  for h in /sys/fs/cgroup/*/; do [ -d "$h/k8s1" ] && find "$h/k8s1" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  if [ -f "$R/sysctl.before" ]; then
    while IFS='=' read -r key value; do [ "$value" = - ] || sysctl -qw "$key=$value" 2>/dev/null || true; done <"$R/sysctl.before"
    rm -f "$R/sysctl.before"
  fi
  log "cluster down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if ready; then echo "up: $KUBECONFIG"; else echo "down"; exit 1; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
