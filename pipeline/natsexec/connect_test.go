package natsexec

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// startAuthServer runs a server (without JetStream) with the given options
// on a free loopback port.
func startAuthServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// writeCerts writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, and returns their file names.
func writeCerts(t *testing.T) (ca, serverCert, serverKey, clientCert, clientKey string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage, certName, keyName string) (string, string) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: certName},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(certName, "CERTIFICATE", der), write(keyName, "EC PRIVATE KEY", keyDER)
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	serverCert, serverKey = leaf(2, x509.ExtKeyUsageServerAuth, "server.pem", "server-key.pem")
	clientCert, clientKey = leaf(3, x509.ExtKeyUsageClientAuth, "client.pem", "client-key.pem")
	return ca, serverCert, serverKey, clientCert, clientKey
}

func TestConnectPassesAuthAndTLSThrough(t *testing.T) {
	token := startAuthServer(t, &server.Options{Authorization: "s3cret"})
	user := startAuthServer(t, &server.Options{Username: "me", Password: "pw"})
	ca, sCert, sKey, cCert, cKey := writeCerts(t)
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: sCert, KeyFile: sKey, CaFile: ca, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	mtls := startAuthServer(t, &server.Options{TLSConfig: tc, TLS: true, TLSVerify: true, TLSTimeout: 2})
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	nkey := startAuthServer(t, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})

	tests := []struct {
		name    string
		opts    ConnectOptions
		wantErr string
	}{
		{"token", ConnectOptions{URL: token.ClientURL(), Token: "s3cret"}, ""},
		{"wrong token", ConnectOptions{URL: token.ClientURL(), Token: "guess"}, "uthorization"},
		{"user and password", ConnectOptions{URL: user.ClientURL(), User: "me", Password: "pw"}, ""},
		{"wrong password", ConnectOptions{URL: user.ClientURL(), User: "me", Password: "no"}, "uthorization"},
		{"TLS with a client certificate", ConnectOptions{URL: mtls.ClientURL(), TLSCA: ca, TLSCert: cCert, TLSKey: cKey}, ""},
		{"TLS without a client certificate", ConnectOptions{URL: mtls.ClientURL(), TLSCA: ca}, "connect to NATS"},
		{"nkey seed", ConnectOptions{URL: nkey.ClientURL(), NkeySeedFile: seedFile}, ""},
		{"no nkey", ConnectOptions{URL: nkey.ClientURL()}, "uthorization"},
		{"no URL", ConnectOptions{}, "no NATS URL"},
		{"two methods", ConnectOptions{URL: token.ClientURL(), Token: "s3cret", User: "me", Password: "pw"}, "not several"},
		{"user without password", ConnectOptions{URL: user.ClientURL(), User: "me"}, "needs a password"},
		{"certificate without key", ConnectOptions{URL: mtls.ClientURL(), TLSCert: cCert}, "needs its key"},
		{"missing nkey seed", ConnectOptions{URL: token.ClientURL(), NkeySeedFile: filepath.Join(t.TempDir(), "none.nk")}, "nkey seed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := Connect(tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				if err := nc.Publish("hello", []byte("world")); err != nil {
					t.Fatal(err)
				}
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				nc.Close()
				t.Fatalf("connected, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
