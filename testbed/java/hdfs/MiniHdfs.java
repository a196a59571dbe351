// A real HDFS (NameNode + one DataNode, MiniDFSCluster from hadoop-client-minicluster) for tests and the demo.
// Run without a build step:  java -cp 'LIB/*' MiniHdfs.java BASEDIR RPC_PORT HTTP_PORT REGISTRY_OWNER [ha]
// Ports 0 = free ones. Permissions and WebHDFS are on. Creates /registry owned by REGISTRY_OWNER (mode 755),
// then prints one JSON line with the real ports, and serves until SIGTERM (shutdown hook stops the cluster).
// "ha": two NameNodes (MiniDFSNNTopology.simpleHATopology, shared edits dir), nn0 active, nn1 standby; the
// ports are then free ones, and stdin takes "active N" / "standby N", each answered by one JSON line.
import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.MiniDFSNNTopology;

public class MiniHdfs {
    public static void main(String[] args) throws Exception {
        File base = new File(args[0]);
        int rpcPort = Integer.parseInt(args[1]);
        int httpPort = Integer.parseInt(args[2]);
        String owner = args[3];
        boolean ha = args.length > 4 && args[4].equals("ha");

        Configuration conf = new Configuration();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, base.getAbsolutePath());
        conf.setBoolean("dfs.webhdfs.enabled", true);
        conf.setBoolean("dfs.permissions.enabled", true);
        conf.setInt("dfs.replication", 1);
        conf.set("fs.permissions.umask-mode", "022");
        conf.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
        conf.set("dfs.namenode.http-bind-host", "127.0.0.1");
        conf.set("dfs.datanode.hostname", "127.0.0.1");
        // small heartbeats so a start and a stop take seconds, not half a minute
        conf.setInt("dfs.heartbeat.interval", 1);
        // -Dmodelgov.hdfs.keytab=K -Dmodelgov.hdfs.principal=hdfs/localhost@R -Dmodelgov.http.keytab=...
        // -Dmodelgov.http.principal=HTTP/localhost@R (and -Djava.security.krb5.conf): a Kerberized cluster, the
        // settings of Hadoop's own secure-cluster tests (SaslDataTransferTestCase.createSecureConfig): SASL on
        // data transfer and HTTPS only (a secure DataNode without privileged ports needs both), the servers'
        // keystores named by ssl-server.xml and ssl-client.xml on the class path, WebHDFS behind SPNEGO
        String keytab = System.getProperty("modelgov.hdfs.keytab");
        if (keytab != null) {
            String principal = System.getProperty("modelgov.hdfs.principal");
            conf.set("hadoop.security.authentication", "kerberos");
            conf.setBoolean("hadoop.security.authorization", true);
            conf.set("dfs.namenode.kerberos.principal", principal);
            conf.set("dfs.namenode.keytab.file", keytab);
            conf.set("dfs.datanode.kerberos.principal", principal);
            conf.set("dfs.datanode.keytab.file", keytab);
            conf.set("dfs.web.authentication.kerberos.principal", System.getProperty("modelgov.http.principal"));
            conf.set("dfs.web.authentication.kerberos.keytab", System.getProperty("modelgov.http.keytab"));
            // the web servers' own SPNEGO filter: without it WebHDFS passed requests on unauthenticated and
            // answered 403 "Security enabled but user not authenticated by filter" (seen with 3.5.0)
            conf.set("hadoop.http.filter.initializers", "org.apache.hadoop.security.AuthenticationFilterInitializer");
            conf.set("hadoop.http.authentication.type", "kerberos");
            conf.set("hadoop.http.authentication.kerberos.principal", System.getProperty("modelgov.http.principal"));
            conf.set("hadoop.http.authentication.kerberos.keytab", System.getProperty("modelgov.http.keytab"));
            conf.setBoolean("hadoop.http.authentication.simple.anonymous.allowed", false);
            conf.setBoolean("dfs.block.access.token.enable", true);
            conf.set("dfs.data.transfer.protection", "authentication");
            conf.set("dfs.http.policy", "HTTPS_ONLY");
            conf.set("dfs.namenode.https-address", "localhost:" + httpPort);
            conf.set("dfs.namenode.https-bind-host", "127.0.0.1");
            conf.set("dfs.datanode.https.address", "127.0.0.1:0");
            conf.set("dfs.client.https.keystore.resource", "ssl-client.xml");
            conf.set("dfs.https.server.keystore.resource", "ssl-server.xml");
            conf.setInt("ipc.client.connect.max.retries.on.sasl", 10);
            org.apache.hadoop.security.UserGroupInformation.setConfiguration(conf);
            org.apache.hadoop.security.UserGroupInformation.loginUserFromKeytab(principal, keytab);
        }

        MiniDFSCluster.Builder builder = new MiniDFSCluster.Builder(conf).numDataNodes(1).format(true);
        if (ha) {
            builder.nnTopology(MiniDFSNNTopology.simpleHATopology());
        } else {
            builder.nameNodePort(rpcPort).nameNodeHttpPort(httpPort);
        }
        MiniDFSCluster cluster = builder.build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            cluster.shutdown();
            stopped.countDown();
        }));
        cluster.waitActive();
        if (ha) {
            cluster.transitionToActive(0);
        }

        FileSystem fs = cluster.getFileSystem(0);
        Path registry = new Path("/registry");
        fs.mkdirs(registry, new FsPermission((short) 0755));
        fs.setOwner(registry, owner, null);

        List<String> httpPorts = new ArrayList<>();
        List<String> rpcPorts = new ArrayList<>();
        boolean https = keytab != null;
        for (int i = 0; i < cluster.getNumNameNodes(); i++) {
            httpPorts.add(String.valueOf(https ? cluster.getNameNode(i).getHttpsAddress().getPort()
                    : cluster.getNameNode(i).getHttpAddress().getPort()));
            rpcPorts.add(String.valueOf(cluster.getNameNode(i).getNameNodeAddress().getPort()));
        }
        int dnHttp = https ? cluster.getDataNodes().get(0).getInfoSecurePort()
                : cluster.getDataNodes().get(0).getInfoPort();
        String superuser = org.apache.hadoop.security.UserGroupInformation.getCurrentUser().getShortUserName();
        System.out.println("{\"rpc_ports\": [" + String.join(", ", rpcPorts) + "], \"http_ports\": ["
                + String.join(", ", httpPorts) + "], \"datanode_http_port\": " + dnHttp
                + ", \"superuser\": \"" + superuser + "\", \"https\": " + https + "}");
        System.out.flush();
        if (ha) {
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                String[] cmd = line.trim().split(" ");
                try {
                    int nn = Integer.parseInt(cmd[1]);
                    if (cmd[0].equals("active")) {
                        cluster.transitionToActive(nn);
                    } else if (cmd[0].equals("standby")) {
                        cluster.transitionToStandby(nn);
                    } else {
                        throw new IllegalArgumentException("unknown command " + cmd[0]);
                    }
                    System.out.println("{\"ok\": true}");
                } catch (Exception e) {
                    System.out.println("{\"ok\": false, \"error\": \"" + e.toString().replace("\"", "'") + "\"}");
                }
                System.out.flush();
            }
        }
        stopped.await();
    }
}
