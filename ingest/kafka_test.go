package ingest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate and its key as PEM files.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafka.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func TestKafkaDialer(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	cfg := DefaultConfig().Kafka
	cfg.TLS = TLSConfig{Enabled: true, CAFile: cert, CertFile: cert, KeyFile: key, ServerName: "kafka.test"}
	cfg.SASL = SASLConfig{Mechanism: SASLScram512, Username: "u", Password: "p"}
	d, err := cfg.dialer()
	if err != nil {
		t.Fatal(err)
	}
	if d.TLS == nil || d.TLS.RootCAs == nil || len(d.TLS.Certificates) != 1 || d.TLS.ServerName != "kafka.test" || d.TLS.InsecureSkipVerify {
		t.Fatalf("tls config %+v", d.TLS)
	}
	if d.SASLMechanism == nil || d.SASLMechanism.Name() != "SCRAM-SHA-512" {
		t.Fatalf("sasl mechanism %v", d.SASLMechanism)
	}
	for mech, name := range map[string]string{SASLPlain: "PLAIN", SASLScram256: "SCRAM-SHA-256"} {
		cfg.SASL.Mechanism = mech
		d, err := cfg.dialer()
		if err != nil || d.SASLMechanism.Name() != name {
			t.Fatalf("%s: %v %v", mech, d, err)
		}
	}

	cfg.SASL = SASLConfig{}
	cfg.TLS = TLSConfig{Enabled: true, CAFile: key} // a key is not a certificate
	if _, err := cfg.dialer(); err == nil || !strings.Contains(err.Error(), "ingest.kafka.tls.ca_file") {
		t.Fatalf("bad CA file: %v", err)
	}
	cfg.TLS = TLSConfig{Enabled: true, CertFile: cert, KeyFile: cert}
	if _, err := cfg.dialer(); err == nil || !strings.Contains(err.Error(), "cert_file/key_file") {
		t.Fatalf("bad key pair: %v", err)
	}
	cfg.TLS = TLSConfig{}
	if d, err := cfg.dialer(); err != nil || d.TLS != nil || d.SASLMechanism != nil {
		t.Fatalf("plain dialer: %+v %v", d, err)
	}
}

func TestParseKind(t *testing.T) {
	for in, ok := range map[string]bool{"auth": true, "app": true, "revocation": true, "": false, "Auth": false} {
		if _, err := ParseKind(in); (err == nil) != ok {
			t.Errorf("ParseKind(%q) err = %v", in, err)
		}
	}
}
