#!/bin/sh
# gen-certs.sh DIR NODE NODE_IP: a CA and the certificates of a single-node cluster (30 days).
set -e
D=$1; NODE=$2; NODEIP=$3
mkdir -p "$D"; cd "$D"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj "/CN=airlock-k8s-ca" 2>/dev/null
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
mk() { # name CN O [SAN]
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2${3:+/O=$3}" 2>/dev/null
  if [ -n "$4" ]; then printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$4" > "$1.ext"
  else printf 'extendedKeyUsage=clientAuth\n' > "$1.ext"; fi
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 30 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
mk apiserver kube-apiserver "" "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:10.96.0.1,IP:$NODEIP"
mk admin admin system:masters
mk kcm system:kube-controller-manager
mk scheduler system:kube-scheduler
mk kube-proxy system:kube-proxy
mk kubelet "system:node:$NODE" system:nodes "DNS:$NODE,IP:$NODEIP,IP:127.0.0.1"
