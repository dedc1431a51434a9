// Readiness check and idempotent topic creation for the local Kafka node, with Kafka's own
// Admin client (one JVM start instead of one per topic). Compiled by install.sh into the cache.
//
//   java -cp '<libs>/*:<tools>' SamsynKafkaAdmin ready  <bootstrap> <timeout-seconds>
//   java -cp '<libs>/*:<tools>' SamsynKafkaAdmin topics <bootstrap> <timeout-seconds> name:partitions ...
//
// "ready" succeeds once describeCluster and listTopics (real metadata requests) answer.
// "topics" waits the same way, creates the missing topics (replication factor 1) and fails when
// an existing topic has a different partition count.

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.errors.TopicExistsException;

public final class SamsynKafkaAdmin {
    private SamsynKafkaAdmin() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: SamsynKafkaAdmin ready|topics <bootstrap> <timeout-s> [name:partitions ...]");
            System.exit(2);
        }
        String command = args[0];
        String bootstrap = args[1];
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[2]));
        Map<String, Integer> wanted = new LinkedHashMap<>();
        for (int i = 3; i < args.length; i++) {
            String[] parts = args[i].split(":", 2);
            wanted.put(parts[0], parts.length > 1 ? Integer.parseInt(parts[1]) : 1);
        }

        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "250");
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "samsyn-local-admin");
        try (Admin admin = Admin.create(props)) {
            Set<String> existing = waitReady(admin, deadline);
            if (command.equals("ready")) {
                System.out.println("ready: " + existing.size() + " topics");
                return;
            }
            if (!command.equals("topics")) {
                System.err.println("unknown command " + command);
                System.exit(2);
            }
            List<NewTopic> missing = new ArrayList<>();
            for (Map.Entry<String, Integer> e : wanted.entrySet()) {
                if (!existing.contains(e.getKey())) {
                    missing.add(new NewTopic(e.getKey(), e.getValue(), (short) 1));
                }
            }
            if (!missing.isEmpty()) {
                for (Map.Entry<String, KafkaFuture<Void>> r
                        : admin.createTopics(missing).values().entrySet()) {
                    try {
                        r.getValue().get();
                        System.out.println("created " + r.getKey());
                    } catch (ExecutionException ex) {
                        if (!(ex.getCause() instanceof TopicExistsException)) {
                            throw ex;
                        }
                    }
                }
            }
            boolean ok = true;
            Map<String, TopicDescription> described =
                    admin.describeTopics(wanted.keySet()).allTopicNames().get();
            for (Map.Entry<String, Integer> e : wanted.entrySet()) {
                int have = described.get(e.getKey()).partitions().size();
                if (have != e.getValue()) {
                    System.err.println("topic " + e.getKey() + " has " + have
                            + " partitions, wanted " + e.getValue());
                    ok = false;
                } else {
                    System.out.println("topic " + e.getKey() + " partitions=" + have);
                }
            }
            if (!ok) {
                System.exit(1);
            }
        }
    }

    private static Set<String> waitReady(Admin admin, long deadline) throws InterruptedException {
        Exception last = null;
        while (System.nanoTime() < deadline) {
            try {
                if (admin.describeCluster().nodes().get(5, TimeUnit.SECONDS).isEmpty()) {
                    throw new IllegalStateException("no brokers in metadata");
                }
                return admin.listTopics().names().get(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                last = e;
                Thread.sleep(250);
            }
        }
        System.err.println("kafka not ready: " + last);
        System.exit(1);
        return Set.of();
    }
}
