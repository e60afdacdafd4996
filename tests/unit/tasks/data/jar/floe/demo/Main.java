package floe.demo;

/** A spark_jar_task main: prints its arguments through a class of another JAR; "fail" exits with 3. */
public class Main {
    public static void main(String[] args) {
        System.out.println(Helper.describe(args));
        if (args.length > 0 && args[0].equals("fail")) {
            System.exit(3);
        }
    }
}
