#!/bin/sh
# Install every build, run and test dependency of ringmail from Debian 12's
# packages. Idempotent: packages already present are left alone.
set -eu

PKGS="build-essential cmake pkg-config clang-14 clang-format-14 \
libclang-rt-14-dev \
liburing-dev libssl-dev liblmdb-dev lmdb-utils libopendkim-dev \
libc-ares-dev libnghttp2-dev libjemalloc-dev libgpgme-dev \
libcmocka-dev libbenchmark-dev libsystemd-dev libcrypt-dev \
dovecot-imapd dovecot-lmtpd systemd openssl gnupg \
python3 python3-dkim python3-h2 dnsmasq-base nghttp2-server nghttp2-client \
qemu-system-x86 xz-utils"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "install-deps: all dependencies present"
	exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
	SUDO="sudo"
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Dovecot's postinst would start a system Dovecot; keep the host quiet.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	$SUDO sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
	trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
