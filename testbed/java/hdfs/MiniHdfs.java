// A real HDFS (NameNode + one DataNode, MiniDFSCluster from hadoop-client-minicluster) for tests and the demo.
// Run without a build step:  java -cp 'LIB/*' MiniHdfs.java BASEDIR RPC_PORT HTTP_PORT REGISTRY_OWNER
// Ports 0 = free ones. Permissions and WebHDFS are on. Creates /registry owned by REGISTRY_OWNER (mode 755),
// then prints one JSON line with the real ports, and serves until SIGTERM (shutdown hook stops the cluster).
import java.io.File;
import java.util.concurrent.CountDownLatch;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.MiniDFSCluster;

public class MiniHdfs {
    public static void main(String[] args) throws Exception {
        File base = new File(args[0]);
        int rpcPort = Integer.parseInt(args[1]);
        int httpPort = Integer.parseInt(args[2]);
        String owner = args[3];

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

        MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf)
                .nameNodePort(rpcPort).nameNodeHttpPort(httpPort)
                .numDataNodes(1).format(true).build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            cluster.shutdown();
            stopped.countDown();
        }));
        cluster.waitActive();

        FileSystem fs = cluster.getFileSystem();
        Path registry = new Path("/registry");
        fs.mkdirs(registry, new FsPermission((short) 0755));
        fs.setOwner(registry, owner, null);

        int nnRpc = cluster.getNameNodePort();
        int nnHttp = cluster.getNameNode().getHttpAddress().getPort();
        int dnHttp = cluster.getDataNodes().get(0).getInfoPort();
        String superuser = org.apache.hadoop.security.UserGroupInformation.getCurrentUser().getShortUserName();
        System.out.println("{\"rpc_port\": " + nnRpc + ", \"http_port\": " + nnHttp + ", \"datanode_http_port\": "
                + dnHttp + ", \"superuser\": \"" + superuser + "\"}");
        System.out.flush();
        stopped.await();
    }
}
