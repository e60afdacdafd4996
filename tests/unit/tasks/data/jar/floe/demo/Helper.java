package floe.demo;

/** Packed in its own JAR, to check that every library JAR is on the driver's classpath. */
public class Helper {
    public static String describe(String[] args) {
        return "args=" + String.join("|", args);
    }
}
