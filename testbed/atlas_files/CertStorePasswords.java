import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.security.alias.CredentialProvider;
import org.apache.hadoop.security.alias.CredentialProviderFactory;

/**
 * Writes the passwords Atlas's SecureEmbeddedServer reads (SecurityUtil.getPassword: keystore.password,
 * truststore.password, password) into a Hadoop credential provider, the way Atlas's own SSL tests do
 * (BaseSSLAndKerberosTest.setupCredentials). Usage: java -cp ATLAS_LIB/* CertStorePasswords.java PROVIDER_URL ALIAS...
 * with one password per alias on stdin, so no password is ever in a process's arguments.
 */
public class CertStorePasswords {
    public static void main(String[] args) throws Exception {
        Configuration conf = new Configuration(false);
        conf.set(CredentialProviderFactory.CREDENTIAL_PROVIDER_PATH, args[0]);
        CredentialProvider provider = CredentialProviderFactory.getProviders(conf).get(0);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (int i = 1; i < args.length; i++) {
            String password = in.readLine();
            if (password == null) {
                throw new IllegalArgumentException("no password on stdin for " + args[i]);
            }
            if (provider.getCredentialEntry(args[i]) != null) {
                provider.deleteCredentialEntry(args[i]);
            }
            provider.createCredentialEntry(args[i], password.toCharArray());
        }
        provider.flush();
    }
}
